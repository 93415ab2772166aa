/**
 * Worker bonds on the settlement contract (docs/CONTRACT.md, "Bonds"): deposit, unbond, withdraw, read,
 * and the slash that a referee's verdict allows. A bond is what the coordinator asks of a worker before it
 * runs single replicas (docs/TRUST.md); a vote the referee shows wrong loses the whole bond to the pool.
 */
import { type Address, type Hash, type Hex, parseEventLogs } from 'viem';
import { type ChainPublicClient, confirmed, type SigningConnection, settlementAbi } from './client.ts';

export interface BondState {
  /** Counts as bonded (the coordinator's trust policy looks at this). */
  bonded: bigint;
  /** Requested back: not bonded any more, still slashable until withdrawn. */
  unbonding: bigint;
  /** When the unbonding part can be withdrawn (unix seconds; 0 when nothing is unbonding). */
  availableAt: bigint;
}

type Reader = Pick<ChainPublicClient, 'readContract'>;

export async function bondOf(client: Reader, settlement: Address, worker: Address): Promise<BondState> {
  const [bonded, unbonding, availableAt] = await client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'bondOf',
    args: [worker],
  });
  return { bonded, unbonding, availableAt: BigInt(availableAt) };
}

/** How long an unbonding request waits (seconds): two epochs, the settlement challenge window. */
export function unbondDelay(client: Reader, settlement: Address): Promise<bigint> {
  return client.readContract({ address: settlement, abi: settlementAbi, functionName: 'unbondDelay' });
}

/** Adds `amount` (wei) to the wallet account's bond. */
export async function depositBond(
  conn: SigningConnection,
  settlement: Address,
  amount: bigint,
): Promise<Hash> {
  if (amount <= 0n) throw new Error('a bond deposit must be more than 0');
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'depositBond',
    value: amount,
    account: conn.wallet.account,
  });
  const hash = await conn.wallet.writeContract(request);
  await confirmed(conn, hash);
  return hash;
}

/** Starts unbonding `amount` (wei) of the wallet account's bond; withdrawable after `unbondDelay`. */
export async function requestUnbond(
  conn: SigningConnection,
  settlement: Address,
  amount: bigint,
): Promise<Hash> {
  if (amount <= 0n) throw new Error('the amount to unbond must be more than 0');
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'requestUnbond',
    args: [amount],
    account: conn.wallet.account,
  });
  const hash = await conn.wallet.writeContract(request);
  await confirmed(conn, hash);
  return hash;
}

/** Withdraws the unbonding part of the wallet account's bond once its wait is over. */
export async function withdrawBond(
  conn: SigningConnection,
  settlement: Address,
): Promise<{ txHash: Hash; amount: bigint }> {
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'withdrawBond',
    account: conn.wallet.account,
  });
  const txHash = await conn.wallet.writeContract(request);
  const receipt = await confirmed(conn, txHash);
  const [event] = parseEventLogs({ abi: settlementAbi, eventName: 'BondWithdrawn', logs: receipt.logs });
  return { txHash, amount: event?.args.amount ?? 0n };
}

/** A vote the referee's verdict shows wrong, with what the contract needs to check it. */
export interface SlashProof {
  taskId: Hex;
  /** The digest the worker voted for. */
  digest: Hex;
  worker: Address;
  voteSig: Hex;
  /** The session grant behind a session-key vote (ignored when the worker signed the vote itself). */
  grant: { sessionKey: Address; expiresAt: bigint; signature: Hex };
  /** The referee's verdict: the task's true digest and REFEREE_ROLE's signature over it. */
  trueDigest: Hex;
  verdictSig: Hex;
}

/** Sends a slash; resolves with the amount moved from the worker's bond to the pool. */
export async function slash(
  conn: SigningConnection,
  settlement: Address,
  proof: SlashProof,
): Promise<{ txHash: Hash; amount: bigint }> {
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'slash',
    args: [
      proof.taskId,
      proof.digest,
      proof.worker,
      proof.voteSig,
      { worker: proof.worker, ...proof.grant },
      proof.trueDigest,
      proof.verdictSig,
    ],
    account: conn.wallet.account,
  });
  const txHash = await conn.wallet.writeContract(request);
  const receipt = await confirmed(conn, txHash);
  const [event] = parseEventLogs({ abi: settlementAbi, eventName: 'Slashed', logs: receipt.logs });
  return { txHash, amount: event?.args.amount ?? 0n };
}
