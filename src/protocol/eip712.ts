/**
 * EIP-712 signing for Cambrian (DESIGN §3): the domain, the two signed types, signing with a viem
 * LocalAccount or WalletClient, and recovery/verification with the same rules the Settlement contract
 * applies (65-byte signatures, v ∈ {27, 28}, low s). Browser-safe: viem only, no node: imports.
 */
import {
  type Address,
  bytesToHex,
  type Hex,
  hashDomain,
  hashTypedData,
  hexToBytes,
  isAddressEqual,
  keccak256,
  type LocalAccount,
  recoverTypedDataAddress,
  type TypedData,
  type TypedDataDefinition,
  toBytes,
  type WalletClient,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { abiWords } from './abi.ts';
import { keccakBytes } from './keccak.ts';

export const EIP712_NAME = 'Cambrian';
export const EIP712_VERSION = '1';

export interface CambrianDomain {
  name: typeof EIP712_NAME;
  version: typeof EIP712_VERSION;
  chainId: number;
  verifyingContract: Address;
}

/** The domain every Cambrian signature is bound to: one chain, one Settlement contract. */
export function cambrianDomain(chainId: number | bigint, verifyingContract: Address): CambrianDomain {
  return { name: EIP712_NAME, version: EIP712_VERSION, chainId: Number(chainId), verifyingContract };
}

export const SESSION_GRANT_TYPES = {
  SessionGrant: [
    { name: 'worker', type: 'address' },
    { name: 'sessionKey', type: 'address' },
    { name: 'expiresAt', type: 'uint64' },
  ],
} as const;

export const RESULT_VOTE_TYPES = {
  ResultVote: [
    { name: 'taskId', type: 'bytes32' },
    { name: 'digest', type: 'bytes32' },
    { name: 'worker', type: 'address' },
  ],
} as const;

/**
 * The lifetime a session grant must at least have when the coordinator accepts it (its session route
 * rejects shorter ones): far beyond the settlement delay (batches settle within minutes), so a grant
 * cannot lapse between a vote and its settlement unless its worker wants it to (then the vote is
 * skipped on chain and the task still settles on the rest).
 */
export const MIN_GRANT_LIFETIME_S = 6 * 3600;

export const REFEREE_VERDICT_TYPES = {
  RefereeVerdict: [
    { name: 'taskId', type: 'bytes32' },
    { name: 'digest', type: 'bytes32' },
  ],
} as const;

/** Signed by the referee key (REFEREE_ROLE): this digest is the task's honest result. */
export interface RefereeVerdict {
  taskId: Hex;
  digest: Hex;
}

export function refereeVerdictTypedData(domain: CambrianDomain, verdict: RefereeVerdict) {
  return {
    domain,
    types: REFEREE_VERDICT_TYPES,
    primaryType: 'RefereeVerdict',
    message: verdict,
  } as const satisfies TypedDataDefinition<typeof REFEREE_VERDICT_TYPES, 'RefereeVerdict'>;
}

/** Signed once by the worker's wallet: `sessionKey` may vote for `worker` until `expiresAt` (unix seconds). */
export interface SessionGrant {
  worker: Address;
  sessionKey: Address;
  expiresAt: bigint;
}

/** Signed by the session key (or the worker itself) for every result. */
export interface ResultVote {
  taskId: Hex;
  digest: Hex;
  worker: Address;
}

export function sessionGrantTypedData(domain: CambrianDomain, grant: SessionGrant) {
  return {
    domain,
    types: SESSION_GRANT_TYPES,
    primaryType: 'SessionGrant',
    message: grant,
  } as const satisfies TypedDataDefinition<typeof SESSION_GRANT_TYPES, 'SessionGrant'>;
}

export function resultVoteTypedData(domain: CambrianDomain, vote: ResultVote) {
  return {
    domain,
    types: RESULT_VOTE_TYPES,
    primaryType: 'ResultVote',
    message: vote,
  } as const satisfies TypedDataDefinition<typeof RESULT_VOTE_TYPES, 'ResultVote'>;
}

/** The one EIP-712 hashing path (the spec's "Mail" example is checked through it in the tests). */
export function eip712Hash<const T extends TypedData | Record<string, unknown>, P extends string>(
  typedData: TypedDataDefinition<T, P>,
): Hex {
  return hashTypedData(typedData);
}

export function hashSessionGrant(domain: CambrianDomain, grant: SessionGrant): Hex {
  return eip712Hash(sessionGrantTypedData(domain, grant));
}

const RESULT_VOTE_TYPEHASH = keccak256(toBytes('ResultVote(bytes32 taskId,bytes32 digest,address worker)'));
const EIP712_DOMAIN_FIELDS = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
] as const;
const domainSeparators = new Map<string, Uint8Array>();

function domainSeparator(domain: CambrianDomain): Uint8Array {
  const key = `${domain.chainId}:${domain.verifyingContract.toLowerCase()}`;
  let separator = domainSeparators.get(key);
  if (!separator) {
    separator = hexToBytes(
      hashDomain({
        domain: { ...domain, chainId: BigInt(domain.chainId) },
        types: { EIP712Domain: EIP712_DOMAIN_FIELDS },
      }),
    );
    domainSeparators.set(key, separator);
  }
  return separator;
}

/**
 * The ResultVote digest, computed directly (one vote per result makes this the coordinator's hot
 * path; viem's generic encoder costs ~6× more). Equal to `eip712Hash(resultVoteTypedData(…))`,
 * which the tests check on random votes.
 */
export function hashResultVote(domain: CambrianDomain, vote: ResultVote): Hex {
  const struct = abiWords(
    { bytes32: RESULT_VOTE_TYPEHASH },
    { bytes32: vote.taskId },
    { bytes32: vote.digest },
    { address: vote.worker },
  );
  const message = new Uint8Array(66);
  message[0] = 0x19;
  message[1] = 0x01;
  message.set(domainSeparator(domain), 2);
  message.set(keccakBytes(struct), 34);
  return bytesToHex(keccakBytes(message));
}

/** Anything that can sign typed data: a local account (session keys, CLI keys) or a wallet. */
export type TypedDataSigner = LocalAccount | WalletClient;

function isWalletClient(signer: TypedDataSigner): signer is WalletClient {
  return 'request' in signer && 'transport' in signer;
}

export async function signTyped<const T extends TypedData, P extends keyof T & string>(
  signer: TypedDataSigner,
  typedData: TypedDataDefinition<T, P>,
): Promise<Hex> {
  if (!isWalletClient(signer)) return signer.signTypedData(typedData as never);
  const account = signer.account;
  if (!account) throw new Error('wallet client has no account to sign with');
  return signer.signTypedData({ ...(typedData as object), account } as never);
}

/** The worker's wallet signs a grant for a session key. */
export function signSessionGrant(
  signer: TypedDataSigner,
  domain: CambrianDomain,
  grant: SessionGrant,
): Promise<Hex> {
  return signTyped(signer, sessionGrantTypedData(domain, grant));
}

/** A session key (or the worker's own key) signs a vote for a result digest. */
export function signResultVote(
  signer: TypedDataSigner,
  domain: CambrianDomain,
  vote: ResultVote,
): Promise<Hex> {
  return signTyped(signer, resultVoteTypedData(domain, vote));
}

/** The referee signs its verdict on a disputed task (the contract settles that digest). */
export function signRefereeVerdict(
  signer: TypedDataSigner,
  domain: CambrianDomain,
  verdict: RefereeVerdict,
): Promise<Hex> {
  return signTyped(signer, refereeVerdictTypedData(domain, verdict));
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SECP256K1_HALF_N = SECP256K1_N / 2n;

/**
 * The other signature ecrecover accepts for the same message (s' = n − s, v flipped). The contract
 * and signatureShapeError reject it; it exists to test exactly that.
 */
export function malleate(signature: Hex): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  const flipped = (v === 27 ? 28 : 27).toString(16);
  return `${signature.slice(0, 66)}${(SECP256K1_N - s).toString(16).padStart(64, '0')}${flipped}` as Hex;
}

/**
 * Why a signature would fail OpenZeppelin's ECDSA rules, or undefined if it passes them:
 * exactly 65 bytes (r ‖ s ‖ v), v ∈ {27, 28}, s in the lower half of the curve order.
 */
export function signatureShapeError(signature: Hex): 'length' | 'v' | 'high-s' | undefined {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return 'length';
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return 'v';
  if (BigInt(`0x${signature.slice(66, 130)}`) > SECP256K1_HALF_N) return 'high-s';
  return undefined;
}

export async function recoverStrict<const T extends TypedData, P extends keyof T & string>(
  typedData: TypedDataDefinition<T, P>,
  signature: Hex,
): Promise<Address | undefined> {
  if (signatureShapeError(signature)) return undefined;
  try {
    return await recoverTypedDataAddress({ ...(typedData as object), signature } as never);
  } catch {
    return undefined;
  }
}

/** The grant's signer under the contract's rules, or undefined for a malformed/malleable signature. */
export function recoverSessionGrantSigner(
  domain: CambrianDomain,
  grant: SessionGrant,
  signature: Hex,
): Promise<Address | undefined> {
  return recoverStrict(sessionGrantTypedData(domain, grant), signature);
}

/** The vote's signer under the contract's rules, or undefined for a malformed/malleable signature. */
export function recoverResultVoteSigner(
  domain: CambrianDomain,
  vote: ResultVote,
  signature: Hex,
): Promise<Address | undefined> {
  return recoverStrict(resultVoteTypedData(domain, vote), signature);
}

/** A vote as it travels to the contract (the `Vote` tuple of `settle`). */
export interface SignedVote {
  worker: Address;
  digest: Hex;
  sessionKey: Address;
  sessionExpiry: bigint;
  grantSig: Hex;
  voteSig: Hex;
}

export type VoteCheck =
  | { ok: true }
  | { ok: false; reason: 'vote-signature' | 'grant-signature' | 'malleable-signature' | 'session-expired' };

/**
 * Checks a vote for `taskId` the way the contract will, minus what needs chain state (revocation,
 * the grant cache) and ERC-1271 smart-account grants. `now` is unix seconds; the contract uses
 * the block timestamp at settlement, so a coordinator should leave a margin.
 */
export async function checkVote(
  domain: CambrianDomain,
  taskId: Hex,
  vote: SignedVote,
  now: bigint,
): Promise<VoteCheck> {
  if (signatureShapeError(vote.voteSig) === 'high-s') return { ok: false, reason: 'malleable-signature' };
  const voter = await recoverResultVoteSigner(
    domain,
    { taskId, digest: vote.digest, worker: vote.worker },
    vote.voteSig,
  );
  if (!voter || !isAddressEqual(voter, vote.sessionKey)) return { ok: false, reason: 'vote-signature' };
  if (isAddressEqual(vote.sessionKey, vote.worker)) return { ok: true };
  if (vote.sessionExpiry <= now) return { ok: false, reason: 'session-expired' };
  if (signatureShapeError(vote.grantSig) === 'high-s') return { ok: false, reason: 'malleable-signature' };
  const grant = { worker: vote.worker, sessionKey: vote.sessionKey, expiresAt: vote.sessionExpiry };
  const granter = await recoverSessionGrantSigner(domain, grant, vote.grantSig);
  if (!granter || !isAddressEqual(granter, vote.worker)) return { ok: false, reason: 'grant-signature' };
  return { ok: true };
}

/** A fresh in-memory session key (the page generates one per session; it never leaves the page). */
export function createSessionKey(): LocalAccount {
  return privateKeyToAccount(generatePrivateKey());
}

/** A worker's open session: its session key, the grant the wallet signed for it, and the expiry. */
export interface WorkerSession {
  worker: Address;
  sessionKey: LocalAccount;
  expiresAt: bigint;
  grantSig: Hex;
}

/** The wallet signs one grant (the Start button); the page keeps the returned session in memory. */
export async function openSession(
  wallet: TypedDataSigner,
  worker: Address,
  domain: CambrianDomain,
  expiresAt: bigint,
  sessionKey: LocalAccount = createSessionKey(),
): Promise<WorkerSession> {
  const grantSig = await signSessionGrant(wallet, domain, {
    worker,
    sessionKey: sessionKey.address,
    expiresAt,
  });
  return { worker, sessionKey, expiresAt, grantSig };
}

/**
 * The session key signs a vote. `omitGrant` leaves grantSig empty, which the contract accepts once it
 * has cached this (worker, sessionKey, expiresAt) grant: it saves calldata for returning workers.
 */
export async function castVote(
  session: WorkerSession,
  domain: CambrianDomain,
  taskId: Hex,
  digest: Hex,
  options: { omitGrant?: boolean } = {},
): Promise<SignedVote> {
  const voteSig = await signResultVote(session.sessionKey, domain, {
    taskId,
    digest,
    worker: session.worker,
  });
  return {
    worker: session.worker,
    digest,
    sessionKey: session.sessionKey.address,
    sessionExpiry: session.expiresAt,
    grantSig: options.omitGrant ? '0x' : session.grantSig,
    voteSig,
  };
}

/** A worker votes with its own key: no grant (sessionKey = worker, grantSig empty, expiry 0). */
export async function castOwnVote(
  worker: LocalAccount,
  domain: CambrianDomain,
  taskId: Hex,
  digest: Hex,
): Promise<SignedVote> {
  const voteSig = await signResultVote(worker, domain, { taskId, digest, worker: worker.address });
  return {
    worker: worker.address,
    digest,
    sessionKey: worker.address,
    sessionExpiry: 0n,
    grantSig: '0x',
    voteSig,
  };
}
