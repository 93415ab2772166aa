import fc from 'fast-check';
import {
  type Address,
  bytesToHex,
  createWalletClient,
  getAddress,
  type Hex,
  http,
  keccak256,
  stringToBytes,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import {
  cambrianDomain,
  castOwnVote,
  castVote,
  checkVote,
  eip712Hash,
  hashResultVote,
  malleate,
  openSession,
  recoverResultVoteSigner,
  recoverSessionGrantSigner,
  resultVoteTypedData,
  signatureShapeError,
  signResultVote,
  signSessionGrant,
} from './eip712.ts';

// The example from the EIP-712 specification (eips.ethereum.org/EIPS/eip-712, Example.js).
const mail = {
  domain: {
    name: 'Ether Mail',
    version: '1',
    chainId: 1,
    verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC',
  },
  types: {
    Person: [
      { name: 'name', type: 'string' },
      { name: 'wallet', type: 'address' },
    ],
    Mail: [
      { name: 'from', type: 'Person' },
      { name: 'to', type: 'Person' },
      { name: 'contents', type: 'string' },
    ],
  },
  primaryType: 'Mail',
  message: {
    from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
    to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
    contents: 'Hello, Bob!',
  },
} as const;

const worker = privateKeyToAccount(keccak256(stringToBytes('worker')));
const sessionKey = privateKeyToAccount(keccak256(stringToBytes('session')));
const domain = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
const taskId = keccak256(stringToBytes('task')) as Hex;
const digest = keccak256(stringToBytes('digest')) as Hex;

describe('EIP-712 hashing', () => {
  it('reproduces the specification\'s "Mail" digest and signature', async () => {
    expect(eip712Hash(mail)).toBe('0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2');
    const cow = privateKeyToAccount(keccak256(stringToBytes('cow')));
    expect(cow.address).toBe('0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826');
    const sig = await cow.signTypedData(mail);
    expect(sig).toBe(
      '0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d' +
        '07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c',
    );
  });

  it('binds votes to chain id, contract, task, digest and worker', () => {
    const base = hashResultVote(domain, { taskId, digest, worker: worker.address });
    const variants = [
      hashResultVote(cambrianDomain(1, domain.verifyingContract), { taskId, digest, worker: worker.address }),
      hashResultVote(cambrianDomain(31337, sessionKey.address), { taskId, digest, worker: worker.address }),
      hashResultVote(domain, { taskId: digest, digest, worker: worker.address }),
      hashResultVote(domain, { taskId, digest: taskId, worker: worker.address }),
      hashResultVote(domain, { taskId, digest, worker: sessionKey.address }),
    ];
    expect(new Set([base, ...variants]).size).toBe(6);
  });

  it('the direct ResultVote hash equals the generic EIP-712 encoder on random votes', () => {
    const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => bytesToHex(b));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 40 }),
        bytes(20),
        bytes(32),
        bytes(32),
        bytes(20),
        fc.boolean(),
        (chainId, contract, taskId, digest, worker, checksum) => {
          const d = cambrianDomain(chainId, (checksum ? getAddress(contract) : contract) as Address);
          const vote = { taskId, digest, worker: (checksum ? getAddress(worker) : worker) as Address };
          expect(hashResultVote(d, vote)).toBe(eip712Hash(resultVoteTypedData(d, vote)));
        },
      ),
      { numRuns: 200 },
    );
    expect(() => hashResultVote(domain, { taskId: '0x01', digest, worker: worker.address })).toThrow(
      /32 bytes/,
    );
  });
});

describe('signing and recovery', () => {
  it('recovers grants and votes signed by a local account', async () => {
    const grant = { worker: worker.address, sessionKey: sessionKey.address, expiresAt: 2_000_000_000n };
    const grantSig = await signSessionGrant(worker, domain, grant);
    expect(await recoverSessionGrantSigner(domain, grant, grantSig)).toBe(worker.address);
    const vote = { taskId, digest, worker: worker.address };
    const voteSig = await signResultVote(sessionKey, domain, vote);
    expect(await recoverResultVoteSigner(domain, vote, voteSig)).toBe(sessionKey.address);
  });

  it('signs the same bytes through a WalletClient as through its account', async () => {
    const wallet = createWalletClient({ account: worker, transport: http('http://127.0.0.1:9') });
    const grant = { worker: worker.address, sessionKey: sessionKey.address, expiresAt: 5n };
    expect(await signSessionGrant(wallet, domain, grant)).toBe(await signSessionGrant(worker, domain, grant));
  });

  it('rejects malleable, short and bad-v signatures', async () => {
    const vote = { taskId, digest, worker: worker.address };
    const sig = await signResultVote(sessionKey, domain, vote);
    expect(signatureShapeError(sig)).toBeUndefined();
    expect(signatureShapeError(malleate(sig))).toBe('high-s');
    expect(signatureShapeError(sig.slice(0, 130) as Hex)).toBe('length');
    expect(signatureShapeError(`${sig.slice(0, 130)}01` as Hex)).toBe('v');
    expect(await recoverResultVoteSigner(domain, vote, malleate(sig))).toBeUndefined();
  });
});

describe('checkVote mirrors the contract rules', () => {
  const now = 1_000n;

  it('accepts session votes and own-key votes', async () => {
    const session = await openSession(worker, worker.address, domain, now + 60n, sessionKey);
    expect(await checkVote(domain, taskId, await castVote(session, domain, taskId, digest), now)).toEqual({
      ok: true,
    });
    expect(await checkVote(domain, taskId, await castOwnVote(worker, domain, taskId, digest), now)).toEqual({
      ok: true,
    });
  });

  it('names why a vote fails', async () => {
    const session = await openSession(worker, worker.address, domain, now + 60n, sessionKey);
    const vote = await castVote(session, domain, taskId, digest);
    const reason = async (v: typeof vote, t: Hex = taskId, at = now) => {
      const r = await checkVote(domain, t, v, at);
      return r.ok ? 'ok' : r.reason;
    };
    expect(await reason(vote, digest)).toBe('vote-signature'); // replayed on another task
    expect(await reason(vote, taskId, now + 60n)).toBe('session-expired');
    expect(await reason({ ...vote, voteSig: malleate(vote.voteSig) })).toBe('malleable-signature');
    const foreign = await openSession(sessionKey, worker.address, domain, now + 60n, sessionKey);
    expect(await reason({ ...vote, grantSig: foreign.grantSig })).toBe('grant-signature');
    const otherChain = cambrianDomain(1, domain.verifyingContract);
    const elsewhere = await castVote(session, otherChain, taskId, digest);
    expect(await reason(elsewhere)).toBe('vote-signature');
    const other: Address = '0x000000000000000000000000000000000000dEaD';
    expect(await reason({ ...vote, sessionKey: other })).toBe('vote-signature');
  });
});
