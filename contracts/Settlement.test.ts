/**
 * Settlement contract against a real anvil node (one per file, random port): majority settlement,
 * every rejection by its custom error, claims, reentrancy, and a fast-check property over random
 * fund/settle/claim sequences.
 */
import fc from 'fast-check';
import {
  type Address,
  encodeAbiParameters,
  encodeFunctionData,
  type Hex,
  keccak256,
  type LocalAccount,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anvilAccount } from '../src/chain/accounts.ts';
import { type AnvilNode, startAnvil } from '../src/chain/anvil.ts';
import { compileTestContract } from '../src/chain/build.ts';
import {
  claim,
  connectChain,
  contractErrorOf,
  deploySettlement,
  fund,
  isSettled,
  owed,
  readConfig,
  readSettledEvents,
  revokeSession,
  type SettlementInput,
  SettlementRejectedError,
  type SigningConnection,
  settleBatch,
  settledDigest,
  settlementAbi,
  strikes,
} from '../src/chain/client.ts';
import {
  type CambrianDomain,
  cambrianDomain,
  castOwnVote,
  castVote,
  hashResultVote,
  hashSessionGrant,
  malleate,
  openSession,
  type SignedVote,
  type WorkerSession,
} from '../src/protocol/eip712.ts';
import { type ResultMetrics, resultDigest } from '../src/protocol/result.ts';

const REWARD = 1_000_000n;
const POOL = 10n ** 18n;

let node: AnvilNode;
let owner: SigningConnection; // anvil account 0: admin and coordinator
const workers: LocalAccount[] = [1, 2, 3, 4, 5].map((i) => anvilAccount(i));

beforeAll(async () => {
  node = await startAnvil();
  owner = await connectChain(node.rpcUrl, anvilAccount(0));
});

afterAll(async () => {
  await node?.stop();
});

interface Fixture {
  address: Address;
  domain: CambrianDomain;
}

async function deploy(
  options: { minQuorum?: number; fund?: bigint; reward?: bigint } = {},
): Promise<Fixture> {
  const { address } = await deploySettlement(owner, {
    rewardPerTask: options.reward ?? REWARD,
    minQuorum: options.minQuorum ?? 2,
    fund: options.fund ?? POOL,
  });
  return { address, domain: cambrianDomain(node.chainId, address) };
}

let taskCounter = 0;
function metrics(seed = taskCounter++): ResultMetrics {
  return {
    taskId: keccak256(toHex(`task ${seed}`)),
    valCorrect: 900 + (seed % 100),
    valCount: 1000,
    valLoss: -123_456_789n * BigInt(seed + 1),
    weightsHash: keccak256(toHex(`weights ${seed}`)),
    traceRoot: keccak256(toHex(`trace ${seed}`)),
  };
}

async function chainTime(): Promise<bigint> {
  return (await owner.publicClient.getBlock()).timestamp;
}

async function sessions(fx: Fixture, count: number, lifetime = 3600n): Promise<WorkerSession[]> {
  const expiresAt = (await chainTime()) + lifetime;
  return Promise.all(workers.slice(0, count).map((w) => openSession(w, w.address, fx.domain, expiresAt)));
}

const wrongDigest = (n: number): Hex => keccak256(toHex(`wrong ${n}`));

/** Votes: the first `agree` sessions vote for the true digest, the rest each for a different wrong one. */
async function votesFor(
  fx: Fixture,
  m: ResultMetrics,
  ss: WorkerSession[],
  agree: number,
): Promise<SignedVote[]> {
  const digest = resultDigest(m);
  return Promise.all(ss.map((s, i) => castVote(s, fx.domain, m.taskId, i < agree ? digest : wrongDigest(i))));
}

/** `tasks` fresh tasks, each voted on by every session for its true digest. */
async function unanimousBatch(fx: Fixture, ss: WorkerSession[], tasks: number): Promise<SettlementInput[]> {
  const batch: SettlementInput[] = [];
  for (let i = 0; i < tasks; i++) {
    const m = metrics();
    batch.push({ ...m, votes: await votesFor(fx, m, ss, ss.length) });
  }
  return batch;
}

async function rejection(
  fx: Fixture,
  batch: SettlementInput[],
  account: Address = owner.wallet.account.address,
) {
  try {
    await owner.publicClient.simulateContract({
      address: fx.address,
      abi: settlementAbi,
      functionName: 'settle',
      args: [batch],
      account,
    });
    return 'accepted';
  } catch (err) {
    return contractErrorOf(err)?.errorName ?? `not a contract error: ${err}`;
  }
}

describe('majority settlement', () => {
  it.each([
    [2, 2],
    [2, 3],
    [3, 5],
  ])('settles %i of %i agreeing votes, credits the majority and strikes dissenters', async (agree, total) => {
    const fx = await deploy();
    const ss = await sessions(fx, total);
    const m = metrics();
    const receipt = await settleBatch(owner, fx.address, [{ ...m, votes: await votesFor(fx, m, ss, agree) }]);
    expect(receipt.rejected).toEqual([]);
    expect(await isSettled(owner.publicClient, fx.address, m.taskId)).toBe(true);
    expect(await settledDigest(owner.publicClient, fx.address, m.taskId)).toBe(resultDigest(m));

    const each = REWARD / BigInt(agree);
    for (const [i, s] of ss.entries()) {
      expect(await owed(owner.publicClient, fx.address, s.worker)).toBe(i < agree ? each : 0n);
      expect(await strikes(owner.publicClient, fx.address, s.worker)).toBe(i < agree ? 0n : 1n);
    }
    expect((await readConfig(owner.publicClient, fx.address)).pool).toBe(POOL - each * BigInt(agree));

    const [event] = await readSettledEvents(owner.publicClient, fx.address);
    expect(event).toMatchObject({
      taskId: m.taskId,
      digest: resultDigest(m),
      valCorrect: m.valCorrect,
      valCount: m.valCount,
      valLoss: m.valLoss,
      winners: ss.slice(0, agree).map((s) => s.worker),
      dissenters: ss.slice(agree).map((s) => s.worker),
      txHash: receipt.txHash,
    });
  });

  it('caches grants: returning workers may omit grantSig; own-key votes need no grant', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const first = metrics();
    await settleBatch(owner, fx.address, [{ ...first, votes: await votesFor(fx, first, ss, 2) }]);

    const second = metrics();
    const digest = resultDigest(second);
    const cached = await Promise.all(
      ss.map((s) => castVote(s, fx.domain, second.taskId, digest, { omitGrant: true })),
    );
    expect(await rejection(fx, [{ ...second, votes: cached }])).toBe('accepted');

    const fresh = await sessions(fx, 2);
    const uncached = await Promise.all(
      fresh.map((s) => castVote(s, fx.domain, second.taskId, digest, { omitGrant: true })),
    );
    expect(await rejection(fx, [{ ...second, votes: uncached }])).toBe('InvalidGrantSignature');

    const own = await Promise.all(
      workers.slice(0, 3).map((w) => castOwnVote(w, fx.domain, second.taskId, digest)),
    );
    const receipt = await settleBatch(owner, fx.address, [{ ...second, votes: own }]);
    expect(receipt.settled).toEqual([second.taskId]);
  });

  it('a batch credits and strikes exactly as task-by-task settlement would (many workers, repeats)', async () => {
    // 18 own-key workers over 4 tasks of 6 votes (the last one dissents): more distinct workers than
    // the contract's in-memory ledger holds for a 6-task batch before it writes back, and some of
    // them vote in two tasks. Then two session workers whose grant, verified in the first task,
    // covers the second task of the same batch.
    const fx = await deploy();
    const crowd = Array.from({ length: 18 }, (_, i) => privateKeyToAccount(keccak256(toHex(`crowd ${i}`))));
    const expectedOwed = new Map<Address, bigint>();
    const expectedStrikes = new Map<Address, bigint>();
    const batch: SettlementInput[] = [];
    for (let t = 0; t < 4; t++) {
      const m = metrics();
      const voters = Array.from({ length: 6 }, (_, k) => crowd[t * 4 + k]);
      const votes = await Promise.all(
        voters.map((w, k) => castOwnVote(w, fx.domain, m.taskId, k < 5 ? resultDigest(m) : wrongDigest(k))),
      );
      batch.push({ ...m, votes });
      for (const [k, w] of voters.entries()) {
        if (k < 5) expectedOwed.set(w.address, (expectedOwed.get(w.address) ?? 0n) + REWARD / 5n);
        else expectedStrikes.set(w.address, (expectedStrikes.get(w.address) ?? 0n) + 1n);
      }
    }
    const ss = await sessions(fx, 2);
    const [first, second] = [metrics(), metrics()];
    batch.push({ ...first, votes: await votesFor(fx, first, ss, 2) });
    const omitted = await Promise.all(
      ss.map((s) => castVote(s, fx.domain, second.taskId, resultDigest(second), { omitGrant: true })),
    );
    batch.push({ ...second, votes: omitted });

    const receipt = await settleBatch(owner, fx.address, batch, { skipRejected: false });
    expect(receipt.settled.length).toBe(6);
    for (const w of crowd) {
      expect(await owed(owner.publicClient, fx.address, w.address)).toBe(expectedOwed.get(w.address) ?? 0n);
      expect(await strikes(owner.publicClient, fx.address, w.address)).toBe(
        expectedStrikes.get(w.address) ?? 0n,
      );
    }
    for (const s of ss) expect(await owed(owner.publicClient, fx.address, s.worker)).toBe(REWARD);
    expect((await readConfig(owner.publicClient, fx.address)).pool).toBe(POOL - 6n * REWARD);
    const events = await readSettledEvents(owner.publicClient, fx.address);
    expect(events.map((e) => [e.taskId, e.winners, e.dissenters])).toEqual(
      batch.map((b) => {
        const digest = resultDigest(b);
        return [
          b.taskId,
          b.votes.filter((v) => v.digest === digest).map((v) => v.worker),
          b.votes.filter((v) => v.digest !== digest).map((v) => v.worker),
        ];
      }),
    );
  });

  it('matches the client-side hashing (vote, grant, result digest)', async () => {
    const fx = await deploy();
    const m = metrics();
    const read = <F extends 'voteHash' | 'grantHash' | 'resultDigest'>(
      functionName: F,
      args: readonly unknown[],
    ) =>
      owner.publicClient.readContract({
        address: fx.address,
        abi: settlementAbi,
        functionName,
        args,
      } as never);
    const vote = { taskId: m.taskId, digest: resultDigest(m), worker: workers[0].address };
    expect(await read('voteHash', [vote.taskId, vote.digest, vote.worker])).toBe(
      hashResultVote(fx.domain, vote),
    );
    const grant = { worker: workers[0].address, sessionKey: workers[1].address, expiresAt: 123n };
    expect(await read('grantHash', [grant.worker, grant.sessionKey, grant.expiresAt])).toBe(
      hashSessionGrant(fx.domain, grant),
    );
    const args = [m.taskId, m.valCorrect, m.valCount, m.valLoss, m.weightsHash, m.traceRoot];
    expect(await read('resultDigest', args)).toBe(resultDigest(m));
  });
});

describe('rejections, each by a named custom error', () => {
  let fx: Fixture;
  let ss: WorkerSession[];
  beforeAll(async () => {
    fx = await deploy({ minQuorum: 2 });
    ss = await sessions(fx, 4);
  });

  it('no majority, too few votes, quorum not reached', async () => {
    const m = metrics();
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, ss.slice(0, 2), 1) }])).toBe(
      'NoMajority',
    );
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, ss.slice(0, 4), 2) }])).toBe(
      'NoMajority',
    );
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, ss.slice(0, 1), 1) }])).toBe(
      'TooFewVotes',
    );
    const strict = await deploy({ minQuorum: 3 });
    const strictSessions = await sessions(strict, 3);
    expect(await rejection(strict, [{ ...m, votes: await votesFor(strict, m, strictSessions, 2) }])).toBe(
      'QuorumNotReached',
    );
  });

  it('a duplicate worker', async () => {
    const m = metrics();
    const [a] = await votesFor(fx, m, ss.slice(0, 1), 1);
    expect(await rejection(fx, [{ ...m, votes: [a, a] }])).toBe('DuplicateWorker');
    // The same worker through two different session keys is still one worker.
    const other = await openSession(workers[0], workers[0].address, fx.domain, ss[0].expiresAt);
    const b = await castVote(other, fx.domain, m.taskId, resultDigest(m));
    expect(await rejection(fx, [{ ...m, votes: [a, b] }])).toBe('DuplicateWorker');
  });

  it('an already-settled task, also twice in one batch', async () => {
    const m = metrics();
    const votes = await votesFor(fx, m, ss.slice(0, 2), 2);
    expect(
      await rejection(fx, [
        { ...m, votes },
        { ...m, votes },
      ]),
    ).toBe('AlreadySettled');
    await settleBatch(owner, fx.address, [{ ...m, votes }]);
    expect(await rejection(fx, [{ ...m, votes }])).toBe('AlreadySettled');
  });

  it('a vote replayed on another task', async () => {
    const m = metrics();
    const other = metrics();
    const votes = await votesFor(fx, m, ss.slice(0, 2), 2);
    const replayed = votes.map((v) => ({ ...v, digest: resultDigest(other) }));
    expect(await rejection(fx, [{ ...other, votes: replayed }])).toBe('InvalidVoteSignature');
  });

  it('an expired or revoked grant', async () => {
    const m = metrics();
    const expired = await sessions(fx, 2, 0n);
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, expired, 2) }])).toBe('SessionExpired');

    // Revoking works whether or not the grant was cached, and only for that key.
    const revoked = await sessions(fx, 2);
    const warm = metrics();
    await settleBatch(owner, fx.address, [{ ...warm, votes: await votesFor(fx, warm, revoked, 2) }]);
    const cached = (s: WorkerSession) =>
      owner.publicClient.readContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'grantCached',
        args: [s.worker, s.sessionKey.address, s.expiresAt],
      });
    expect(await cached(revoked[1])).toBe(true);
    const revokerConn = await connectChain(node.rpcUrl, workers[1]);
    await revokeSession(revokerConn, fx.address, revoked[1].sessionKey.address);
    expect(await cached(revoked[1])).toBe(false);
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, revoked, 2) }])).toBe(
      'SessionKeyRevoked',
    );
    const replacement = [revoked[0], (await sessions(fx, 2))[1]];
    expect(await rejection(fx, [{ ...m, votes: await votesFor(fx, m, replacement, 2) }])).toBe('accepted');
  });

  it('a grant or vote signed for another chain id or contract', async () => {
    const m = metrics();
    const digest = resultDigest(m);
    const expiresAt = ss[0].expiresAt;
    const elsewhere = [
      cambrianDomain(1, fx.address),
      cambrianDomain(node.chainId, '0x000000000000000000000000000000000000c0de'),
    ];
    for (const foreign of elsewhere) {
      // Grant signed for the foreign domain, vote for ours.
      const foreignSessions = await Promise.all(
        workers.slice(0, 2).map((w) => openSession(w, w.address, foreign, expiresAt)),
      );
      const badGrants = await Promise.all(
        foreignSessions.map((s) => castVote(s, fx.domain, m.taskId, digest)),
      );
      expect(await rejection(fx, [{ ...m, votes: badGrants }])).toBe('InvalidGrantSignature');
      // Grant for ours, vote signed for the foreign domain.
      const badVotes = await Promise.all(ss.slice(0, 2).map((s) => castVote(s, foreign, m.taskId, digest)));
      expect(await rejection(fx, [{ ...m, votes: badVotes }])).toBe('InvalidVoteSignature');
    }
  });

  it('a high-s (malleable) vote or grant signature', async () => {
    const m = metrics();
    const fresh = await sessions(fx, 2);
    const votes = await votesFor(fx, m, fresh, 2);
    expect(
      await rejection(fx, [
        { ...m, votes: [votes[0], { ...votes[1], voteSig: malleate(votes[1].voteSig) }] },
      ]),
    ).toBe('MalleableSignature');
    expect(
      await rejection(fx, [
        { ...m, votes: [votes[0], { ...votes[1], grantSig: malleate(votes[1].grantSig) }] },
      ]),
    ).toBe('MalleableSignature');
    expect(await rejection(fx, [{ ...m, votes }])).toBe('accepted');
  });

  it('metrics that do not hash to the majority digest', async () => {
    const m = metrics();
    const votes = await votesFor(fx, m, ss.slice(0, 2), 2);
    expect(await rejection(fx, [{ ...m, valCorrect: m.valCorrect + 1, votes }])).toBe('MetricsMismatch');
    expect(await rejection(fx, [{ ...m, valLoss: -m.valLoss, votes }])).toBe('MetricsMismatch');
  });

  it('a caller without the coordinator role', async () => {
    const m = metrics();
    const votes = await votesFor(fx, m, ss.slice(0, 2), 2);
    expect(await rejection(fx, [{ ...m, votes }], workers[0].address)).toBe(
      'AccessControlUnauthorizedAccount',
    );
  });

  it('one bad settlement rejects the whole batch; settleBatch names it and can skip it', async () => {
    const good = metrics();
    const bad = metrics();
    const batch = [
      { ...good, votes: await votesFor(fx, good, ss.slice(0, 2), 2) },
      { ...bad, votes: await votesFor(fx, bad, ss.slice(0, 2), 1) },
    ];
    const strict = settleBatch(owner, fx.address, batch, { skipRejected: false });
    await expect(strict).rejects.toBeInstanceOf(SettlementRejectedError);
    await expect(strict).rejects.toMatchObject({
      index: 1,
      rejection: { errorName: 'NoMajority', taskId: bad.taskId },
    });
    expect(await isSettled(owner.publicClient, fx.address, good.taskId)).toBe(false);

    const receipt = await settleBatch(owner, fx.address, batch);
    expect(receipt.settled).toEqual([good.taskId]);
    expect(receipt.rejected).toMatchObject([{ taskId: bad.taskId, errorName: 'NoMajority' }]);
  });
});

describe('claims', () => {
  it('pays exactly what is owed, once', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const batch = await unanimousBatch(fx, ss, 3);
    await settleBatch(owner, fx.address, batch);
    const worker = await connectChain(node.rpcUrl, workers[0]);
    const due = await owed(owner.publicClient, fx.address, workers[0].address);
    expect(due).toBe((3n * REWARD) / 2n);

    const before = await owner.publicClient.getBalance({ address: workers[0].address });
    const receipt = await claim(worker, fx.address);
    const tx = await owner.publicClient.getTransactionReceipt({ hash: receipt.txHash });
    const after = await owner.publicClient.getBalance({ address: workers[0].address });
    expect(receipt.amount).toBe(due);
    expect(after - before).toBe(due - tx.gasUsed * tx.effectiveGasPrice);
    expect(await owed(owner.publicClient, fx.address, workers[0].address)).toBe(0n);
    await expect(claim(worker, fx.address)).rejects.toSatisfy(
      (e) => contractErrorOf(e)?.errorName === 'NothingToClaim',
    );
  });

  it('credits what is left when the pool runs dry, and nothing after', async () => {
    const fx = await deploy({ fund: REWARD + REWARD / 2n });
    const ss = await sessions(fx, 2);
    const batch = await unanimousBatch(fx, ss, 3);
    await settleBatch(owner, fx.address, batch);
    expect(await owed(owner.publicClient, fx.address, ss[0].worker)).toBe(REWARD / 2n + REWARD / 4n);
    expect((await readConfig(owner.publicClient, fx.address)).pool).toBe(0n);
    expect((await readSettledEvents(owner.publicClient, fx.address)).length).toBe(3);
  });

  it('a credit that would take owed past uint96 reverts with Panic(0x11), as checked arithmetic does', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const first = metrics();
    await settleBatch(owner, fx.address, [{ ...first, votes: await votesFor(fx, first, ss, 2) }]);
    // Find the worker's account slot (mapping slot k: keccak256(worker, k)) by its owed value, then
    // raise owed to just below what one more credit overflows.
    const worker = ss[0].worker;
    const slotOf = (k: bigint) =>
      keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [worker, k]));
    let slot: Hex | undefined;
    for (let k = 0n; k < 8n && !slot; k++) {
      const word = BigInt(
        (await owner.publicClient.getStorageAt({ address: fx.address, slot: slotOf(k) })) ?? '0x0',
      );
      if ((word & (2n ** 96n - 1n)) === REWARD / 2n) slot = slotOf(k);
    }
    expect(slot).toBeDefined();
    const word = BigInt((await owner.publicClient.getStorageAt({ address: fx.address, slot: slot! }))!);
    const nearMax = (word & ~(2n ** 96n - 1n)) | (2n ** 96n - REWARD / 2n);
    await owner.publicClient.request({
      method: 'anvil_setStorageAt',
      params: [fx.address, slot!, toHex(nearMax, { size: 32 })],
    } as never);
    const second = metrics();
    expect(await rejection(fx, [{ ...second, votes: await votesFor(fx, second, ss, 2) }])).toBe('Panic');
    const third = metrics();
    const others = await sessions(fx, 3);
    expect(await rejection(fx, [{ ...third, votes: await votesFor(fx, third, others.slice(1), 2) }])).toBe(
      'accepted',
    );
  });

  it('a re-entering attacker contract cannot claim twice', async () => {
    const fx = await deploy();
    const attacker = compileTestContract('contracts/test/Reentrant.sol', 'Reentrant');
    const abi = attacker.abi as readonly unknown[];
    const deployTx = await owner.wallet.deployContract({
      abi,
      bytecode: attacker.bytecode,
      args: [fx.address],
    });
    const attackerAddress = (await owner.publicClient.waitForTransactionReceipt({ hash: deployTx }))
      .contractAddress!;
    const send = async (data: Hex) => {
      const hash = await owner.wallet.sendTransaction({ to: attackerAddress, data });
      return owner.publicClient.waitForTransactionReceipt({ hash });
    };
    const call = (functionName: string, args: unknown[] = []) =>
      encodeFunctionData({ abi: abi as never, functionName, args } as never);
    const read = (functionName: string) =>
      owner.publicClient.readContract({ address: attackerAddress, abi: abi as never, functionName } as never);

    // The attacker is a smart-account worker: it approves a session grant through ERC-1271.
    const [session] = await sessions(fx, 1);
    const attackerSession = { ...session, worker: attackerAddress, grantSig: '0x' as Hex };
    await send(
      call('approve', [
        hashSessionGrant(fx.domain, {
          worker: attackerAddress,
          sessionKey: session.sessionKey.address,
          expiresAt: session.expiresAt,
        }),
      ]),
    );
    const honest = (await sessions(fx, 2))[1];
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      await castVote(attackerSession, fx.domain, m.taskId, digest),
      await castVote(honest, fx.domain, m.taskId, digest),
    ];
    await settleBatch(owner, fx.address, [{ ...m, votes }]);
    expect(await owed(owner.publicClient, fx.address, attackerAddress)).toBe(REWARD / 2n);

    const receipt = await send(call('attack'));
    expect(receipt.status).toBe('success');
    expect(await owner.publicClient.getBalance({ address: attackerAddress })).toBe(REWARD / 2n);
    expect(await read('reentryAttempts')).toBe(1n);
    expect(await read('reentrySucceeded')).toBe(false);
    expect(await read('reentryError')).toBe('0x3ee5aeb5'); // ReentrancyGuardReentrantCall()
    expect(await owed(owner.publicClient, fx.address, attackerAddress)).toBe(0n);
  });
});

describe('property: random fund/settle/claim sequences', () => {
  type Op =
    | { kind: 'fund'; amount: bigint }
    | { kind: 'settle'; tasks: { task: number; votes: number; agree: number }[] }
    | { kind: 'claim'; worker: number };

  const honestTask = fc
    .record({ task: fc.nat(4), votes: fc.integer({ min: 2, max: 4 }) })
    .map((t) => ({ ...t, agree: t.votes }));
  const anyTask = fc
    .record({ task: fc.nat(4), votes: fc.integer({ min: 1, max: 4 }), agree: fc.nat(4) })
    .map((t) => ({ ...t, agree: Math.min(t.agree, t.votes) }));
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('fund' as const), amount: fc.bigInt(1n, 3n * REWARD) }),
    fc.record({
      kind: fc.constant('settle' as const),
      tasks: fc.array(fc.oneof({ arbitrary: honestTask, weight: 3 }, { arbitrary: anyTask, weight: 1 }), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
    fc.record({ kind: fc.constant('claim' as const), worker: fc.nat(3) }),
  );

  /** What the contract should do, in plain TypeScript: the model the chain is compared with. */
  class Model {
    pool = 1n;
    funded = 1n;
    claimed = 0n;
    owed = [0n, 0n, 0n, 0n];
    settled = new Set<number>();
    settle(t: { task: number; votes: number; agree: number }): void {
      const valid = !this.settled.has(t.task) && t.agree >= 2 && 2 * t.agree > t.votes;
      if (!valid) return;
      this.settled.add(t.task);
      const each = (REWARD < this.pool ? REWARD : this.pool) / BigInt(t.agree);
      this.pool -= each * BigInt(t.agree);
      for (let i = 0; i < t.agree; i++) this.owed[i] += each;
    }
  }

  it('keeps Σowed + Σclaimed ≤ Σfunded, settles each task at most once, and matches a model', async () => {
    const claimers = await Promise.all(workers.slice(0, 4).map((w) => connectChain(node.rpcUrl, w)));
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        const fx = await deploy({ fund: 1n });
        const model = new Model();
        const ss = await sessions(fx, 4);
        const base = taskCounter;
        taskCounter += 5;
        for (const o of ops) {
          if (o.kind === 'fund') {
            await fund(owner, fx.address, o.amount);
            model.funded += o.amount;
            model.pool += o.amount;
          } else if (o.kind === 'claim') {
            const due = model.owed[o.worker];
            if (due > 0n) {
              expect((await claim(claimers[o.worker], fx.address)).amount).toBe(due);
              model.claimed += due;
              model.owed[o.worker] = 0n;
            }
          } else {
            const batch = await Promise.all(
              o.tasks.map(async (t) => {
                const m = metrics(base + t.task);
                return { ...m, votes: await votesFor(fx, m, ss.slice(0, t.votes), t.agree) };
              }),
            );
            await settleBatch(owner, fx.address, batch);
            for (const t of o.tasks) model.settle(t);
          }
          const chainOwed = await Promise.all(
            workers.slice(0, 4).map((w) => owed(owner.publicClient, fx.address, w.address)),
          );
          const totalOwed = chainOwed.reduce((a, b) => a + b, 0n);
          expect(totalOwed + model.claimed).toBeLessThanOrEqual(model.funded);
          expect(chainOwed).toEqual(model.owed);
          const { pool } = await readConfig(owner.publicClient, fx.address);
          expect(pool).toBe(model.pool);
          expect(await owner.publicClient.getBalance({ address: fx.address })).toBe(pool + totalOwed);
        }
        const events = await readSettledEvents(owner.publicClient, fx.address);
        const ids = events.map((e) => e.taskId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(model.settled.size);
      }),
      { numRuns: 20 },
    );
  });
});
