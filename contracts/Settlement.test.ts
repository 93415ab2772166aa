/**
 * Settlement v2 against a real anvil node (one per file, random port): majority and refereed settlement,
 * skipped votes (the veto), grant caching and revocation, roles, the payout cap, the challenge window,
 * scheduled terms, sponsor withdrawal, claimTo, the ERC-1271 gas cap, and the tasks rebuilt from the chain.
 * Each finding of issue 12 has a test here named after it.
 */
import { type Address, getAddress, type Hex, keccak256, type LocalAccount, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anvilAccount } from '../src/chain/accounts.ts';
import { type AnvilNode, startAnvil } from '../src/chain/anvil.ts';
import { compileTestContract } from '../src/chain/build.ts';
import {
  claim,
  claimable,
  connectChain,
  contractErrorOf,
  deploySettlement,
  fund,
  grantOf,
  isSettled,
  OPERATOR_SEARCH,
  owed,
  prepareSettle,
  readConfig,
  readSettledEvents,
  revokeSession,
  type SettlementInput,
  SettlementRejectedError,
  type SigningConnection,
  settleBatch,
  settlementAbi,
  settlementInput,
  strikes,
  voidCredits,
} from '../src/chain/client.ts';
import { closeSearch, openSearch, searchGrace, searchOf, withdrawSearch } from '../src/chain/searches.ts';
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
  signRefereeVerdict,
  type WorkerSession,
} from '../src/protocol/eip712.ts';
import { type ResultMetrics, resultDigest } from '../src/protocol/result.ts';

const REWARD = 1_000_000n;
const POOL = 10n ** 18n;
const EPOCH = 1_000;

let node: AnvilNode;
let admin: SigningConnection; // dev account 0: DEFAULT_ADMIN_ROLE
let coordinator: SigningConnection; // dev account 6: COORDINATOR_ROLE only
const referee = anvilAccount(7);
const workers: LocalAccount[] = [1, 2, 3, 4, 5].map((i) => anvilAccount(i));

beforeAll(async () => {
  node = await startAnvil();
  admin = await connectChain(node.rpcUrl, anvilAccount(0));
  coordinator = await connectChain(node.rpcUrl, anvilAccount(6));
});

afterAll(async () => {
  await node?.stop();
});

interface Fixture {
  address: Address;
  domain: CambrianDomain;
}

async function deploy(
  options: { minQuorum?: number; fund?: bigint; reward?: bigint; cap?: bigint } = {},
): Promise<Fixture> {
  const { address } = await deploySettlement(admin, {
    admin: admin.wallet.account.address,
    coordinator: coordinator.wallet.account.address,
    referee: referee.address,
    rewardPerTask: options.reward ?? REWARD,
    minQuorum: options.minQuorum ?? 2,
    epochCap: options.cap ?? POOL,
    epochSeconds: EPOCH,
    fund: options.fund ?? POOL,
  });
  return { address, domain: cambrianDomain(node.chainId, address) };
}

let counter = 0;
let nextSeq = 1n;
function metrics(seed = counter++): ResultMetrics {
  return {
    taskId: keccak256(toHex(`task ${seed}`)),
    valCorrect: 900 + (seed % 100),
    valCount: 1000,
    valLoss: -123_456_789n * BigInt(seed + 1),
    weightsHash: keccak256(toHex(`weights ${seed}`)),
    traceRoot: keccak256(toHex(`trace ${seed}`)),
  };
}

function task(m: ResultMetrics, votes: SignedVote[], extra: Partial<SettlementInput> = {}): SettlementInput {
  return settlementInput(nextSeq++, m, votes, extra);
}

async function chainTime(): Promise<bigint> {
  return (await admin.publicClient.getBlock()).timestamp;
}

async function advance(seconds: number): Promise<void> {
  await admin.publicClient.request({ method: 'evm_increaseTime', params: [toHex(seconds)] } as never);
  await admin.publicClient.request({ method: 'evm_mine', params: [] } as never);
}

async function sessions(fx: Fixture, count: number, lifetime = 3600n, from = 0): Promise<WorkerSession[]> {
  const expiresAt = (await chainTime()) + lifetime;
  return Promise.all(
    workers.slice(from, from + count).map((w) => openSession(w, w.address, fx.domain, expiresAt)),
  );
}

/** Sends a transaction and waits until it is mined: anvil answers `eth_sendRawTransaction` before the block lands,
 * so a read right after an unawaited write may still see the old state (it did, once, in CI). */
async function mined(
  conn: SigningConnection,
  request: Parameters<SigningConnection['wallet']['writeContract']>[0],
) {
  const hash = await conn.wallet.writeContract(request);
  return conn.publicClient.waitForTransactionReceipt({ hash });
}

const wrongDigest = (n: number): Hex => keccak256(toHex(`wrong ${n}`));

/** The first `agree` sessions vote for the true digest, the rest for one wrong digest. */
async function votesFor(
  fx: Fixture,
  m: ResultMetrics,
  ss: WorkerSession[],
  agree: number,
): Promise<SignedVote[]> {
  const digest = resultDigest(m);
  return Promise.all(ss.map((s, i) => castVote(s, fx.domain, m.taskId, i < agree ? digest : wrongDigest(0))));
}

/** The contract's verdict on a batch: 'accepted' or the custom error's name (of the task it names, if any). */
async function verdictOn(fx: Fixture, batch: SettlementInput[], as: SigningConnection = coordinator) {
  try {
    const prepared = await prepareSettle(as, fx.address, as.wallet.account, batch, { skipRejected: false });
    return prepared.deferred.length > 0 ? 'PayoutCapReached' : 'accepted';
  } catch (err) {
    if (err instanceof SettlementRejectedError) return err.rejection.errorName;
    return contractErrorOf(err)?.errorName ?? `not a contract error: ${err}`;
  }
}

async function skippedVotes(fx: Fixture) {
  const logs = await admin.publicClient.getContractEvents({
    address: fx.address,
    abi: settlementAbi,
    eventName: 'VoteSkipped',
    fromBlock: 0n,
  });
  return logs.map((l) => ({ seq: l.args.seq, worker: l.args.worker, reason: l.args.reason }));
}

const read = (fx: Fixture) => ({
  owed: (w: Address) => owed(admin.publicClient, fx.address, w),
  claimable: (w: Address) => claimable(admin.publicClient, fx.address, w),
  strikes: (w: Address) => strikes(admin.publicClient, fx.address, w),
  pool: async () => (await readConfig(admin.publicClient, fx.address)).pool,
});

describe('majority settlement', () => {
  it.each([
    [2, 2],
    [2, 3],
    [3, 5],
  ])('settles %i of %i agreeing votes, credits the majority and strikes dissenters', async (agree, total) => {
    const fx = await deploy();
    const ss = await sessions(fx, total);
    const m = metrics();
    const t = task(m, await votesFor(fx, m, ss, agree), { spec: '{"v":1}' });
    const receipt = await settleBatch(coordinator, fx.address, [t]);
    expect(receipt.rejected).toEqual([]);
    expect(await isSettled(admin.publicClient, fx.address, t.seq)).toBe(true);
    const each = REWARD / BigInt(agree);
    for (const [i, s] of ss.entries()) {
      expect(await read(fx).owed(s.worker)).toBe(i < agree ? each : 0n);
      expect(await read(fx).strikes(s.worker)).toBe(i < agree ? 0n : 1n);
    }
    expect(await read(fx).pool()).toBe(POOL - each * BigInt(agree));
    const [event] = await readSettledEvents(admin.publicClient, fx.address);
    expect(event).toMatchObject({
      seq: t.seq,
      taskId: m.taskId,
      digest: resultDigest(m),
      valLoss: m.valLoss,
      weightsHash: m.weightsHash,
      winners: ss.slice(0, agree).map((s) => s.worker),
      dissenters: ss.slice(agree).map((s) => s.worker),
      spec: '{"v":1}',
      refereed: false,
      txHash: receipt.txHash,
    });
  });

  it('rejects, naming the index: no majority, quorum not reached, a task settled before or twice in a batch', async () => {
    const fx = await deploy({ minQuorum: 3 });
    const ss = await sessions(fx, 4);
    const m = metrics();
    expect(await verdictOn(fx, [task(m, await votesFor(fx, m, ss, 2))])).toBe('NoMajority');
    expect(await verdictOn(fx, [task(m, await votesFor(fx, m, ss.slice(0, 2), 2))])).toBe('QuorumNotReached');
    const ok = task(m, await votesFor(fx, m, ss.slice(0, 3), 3));
    await settleBatch(coordinator, fx.address, [ok]);
    expect(await verdictOn(fx, [{ ...ok }])).toBe('AlreadySettled');
    const m2 = metrics();
    const again = task(m2, await votesFor(fx, m2, ss.slice(0, 3), 3));
    const err = await prepareSettle(
      coordinator,
      fx.address,
      coordinator.wallet.account,
      [again, { ...again }],
      {
        skipRejected: false,
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(SettlementRejectedError);
    expect(err.index).toBe(1);
  });

  it('keeps the settled bitmap exact when a batch moves between its words (read and stored once per word)', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const at = async (seq: bigint) => {
      const m = metrics();
      return settlementInput(seq, m, await votesFor(fx, m, ss, 2));
    };
    // 255 and 256 sit in two words; going back to the first word in the same batch still sees 255.
    const back = await prepareSettle(
      coordinator,
      fx.address,
      coordinator.wallet.account,
      [await at(255n), await at(256n), await at(255n)],
      { skipRejected: false },
    ).catch((e) => e);
    expect(back).toBeInstanceOf(SettlementRejectedError);
    expect([back.index, back.rejection.errorName]).toEqual([2, 'AlreadySettled']);
    const seqs = [255n, 256n, 511n, 512n, 100_000n];
    const receipt = await settleBatch(coordinator, fx.address, await Promise.all(seqs.map(at)));
    expect(receipt.settled).toHaveLength(seqs.length);
    for (const seq of [...seqs, 254n, 257n, 510n, 513n, 99_999n])
      expect(await isSettled(admin.publicClient, fx.address, seq)).toBe(seqs.includes(seq));
    // Every word was stored: each seq is refused in a later batch.
    for (const seq of seqs) expect(await verdictOn(fx, [await at(seq)])).toBe('AlreadySettled');
  });

  it('counts no worker twice under any key (finding: no worker counted twice)', async () => {
    const fx = await deploy();
    const [s] = await sessions(fx, 1);
    const other = await openSession(workers[0], workers[0].address, fx.domain, s.expiresAt);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      await castVote(s, fx.domain, m.taskId, digest),
      await castVote(other, fx.domain, m.taskId, digest),
    ];
    expect(await verdictOn(fx, [task(m, votes)])).toBe('DuplicateWorker');
    const own = await castOwnVote(workers[0], fx.domain, m.taskId, digest);
    expect(await verdictOn(fx, [task(m, [votes[0], own])])).toBe('DuplicateWorker');
  });

  it('hashes votes and grants like the TypeScript side', async () => {
    const fx = await deploy();
    const [s] = await sessions(fx, 1);
    const m = metrics();
    const vote = { taskId: m.taskId, digest: resultDigest(m), worker: s.worker };
    const call = <T>(functionName: 'voteHash' | 'grantHash' | 'resultDigest', args: readonly unknown[]) =>
      admin.publicClient.readContract({
        address: fx.address,
        abi: settlementAbi,
        functionName,
        args,
      } as never) as T;
    expect(await call('voteHash', [vote.taskId, vote.digest, vote.worker])).toBe(
      hashResultVote(fx.domain, vote),
    );
    const grant = { worker: s.worker, sessionKey: s.sessionKey.address, expiresAt: s.expiresAt };
    expect(await call('grantHash', [grant.worker, grant.sessionKey, grant.expiresAt])).toBe(
      hashSessionGrant(fx.domain, grant),
    );
    expect(
      await call('resultDigest', [m.taskId, m.valCorrect, m.valCount, m.valLoss, m.weightsHash, m.traceRoot]),
    ).toBe(resultDigest(m));
  });
});

describe('invalid votes are skipped, not fatal (finding: one voter sinks a whole task)', () => {
  it('an expired grant is skipped and the majority still settles; the dissenter cannot veto', async () => {
    const fx = await deploy();
    const long = await sessions(fx, 2);
    const [short] = await sessions(fx, 1, 30n, 2);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      ...(await Promise.all(long.map((s) => castVote(s, fx.domain, m.taskId, digest)))),
      await castVote(short, fx.domain, m.taskId, wrongDigest(1)),
    ];
    await advance(60);
    const t = task(m, votes);
    const receipt = await settleBatch(coordinator, fx.address, [t]);
    expect(receipt.settled).toEqual([m.taskId]);
    // The expired grant is not even cached: the dissenter's vote is skipped, no strike, no veto.
    expect(await skippedVotes(fx)).toEqual([{ seq: t.seq, worker: short.worker, reason: 1 }]);
    expect(await read(fx).owed(long[0].worker)).toBe(REWARD / 2n);
    expect(await read(fx).strikes(short.worker)).toBe(0n);
  });

  it('a cached grant that expires later skips its vote with reason 2 (expired)', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 3, 120n);
    const first = metrics();
    await settleBatch(coordinator, fx.address, [task(first, await votesFor(fx, first, ss, 3))]);
    const fresh = await sessions(fx, 2, 3600n);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      ...(await Promise.all(fresh.map((s) => castVote(s, fx.domain, m.taskId, digest)))),
      await castVote(ss[2], fx.domain, m.taskId, digest),
    ];
    await advance(200);
    const t = task(m, votes);
    await settleBatch(coordinator, fx.address, [t]);
    expect((await skippedVotes(fx)).filter((s) => s.seq === t.seq)).toEqual([
      { seq: t.seq, worker: ss[2].worker, reason: 2 },
    ]);
    // Each vote sent for the digest earns a third; the skipped vote's third stays in the pool.
    expect(await read(fx).owed(fresh[0].worker)).toBe(REWARD / 3n + REWARD / 3n);
    expect(await read(fx).pool()).toBe(POOL - 5n * (REWARD / 3n));
  });

  it('when the skips leave no strict majority, the task is rejected by index and the rest of the batch settles', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const m = metrics();
    const votes = await votesFor(fx, m, ss, 2);
    await revokeSession(await connectChain(node.rpcUrl, workers[1]), fx.address, ss[1].sessionKey.address);
    const good = metrics();
    const others = await sessions(fx, 2, 3600n, 2);
    const receipt = await settleBatch(coordinator, fx.address, [
      task(m, votes),
      task(good, await votesFor(fx, good, others, 2)),
    ]);
    expect(receipt.rejected.map((r) => r.errorName)).toEqual(['QuorumNotReached']);
    expect(receipt.settled).toEqual([good.taskId]);
  });

  it('a bad or malleable vote signature is skipped with its reason', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 4);
    const m = metrics();
    const votes = await votesFor(fx, m, ss, 4);
    votes[2] = { ...votes[2], voteSig: malleate(votes[2].voteSig) };
    votes[3] = { ...votes[3], voteSig: votes[0].voteSig };
    const t = task(m, votes);
    await settleBatch(coordinator, fx.address, [t]);
    expect(await skippedVotes(fx)).toEqual([
      { seq: t.seq, worker: ss[2].worker, reason: 4 },
      { seq: t.seq, worker: ss[3].worker, reason: 1 },
    ]);
    expect(await read(fx).owed(ss[0].worker)).toBe(REWARD / 4n);
    expect(await read(fx).owed(ss[3].worker)).toBe(0n);
  });
});

describe('the anvil wedge (issue 11): a node that mines only on transactions', () => {
  it('judges expiry at the pending block, so a grant that lapsed since the last block neither passes simulation nor wedges the send', async () => {
    const fx = await deploy();
    const long = await sessions(fx, 2);
    // Expires 3 s after the latest block; the node's clock then passes it with no block mined.
    const [lapsing] = await sessions(fx, 1, 3n, 2);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      ...(await Promise.all(long.map((s) => castVote(s, fx.domain, m.taskId, digest)))),
      await castVote(lapsing, fx.domain, m.taskId, digest),
    ];
    // A task that only the lapsed vote gives its quorum: judged at the latest block it would pass
    // simulation and then revert when mined (the wedge); judged at the pending block it is rejected up front.
    const m2 = metrics();
    const digest2 = resultDigest(m2);
    const onlyWithLapsed = [
      await castVote(long[0], fx.domain, m2.taskId, digest2),
      await castVote(lapsing, fx.domain, m2.taskId, digest2),
    ];
    // viem caches the block number for a polling interval: read it uncached, or a stale number passes.
    const latest = await admin.publicClient.getBlockNumber({ cacheTime: 0 });
    // The node's clock moves past the expiry without mining, as wall time would on an idle node; no sleep.
    await admin.publicClient.request({ method: 'evm_increaseTime', params: [toHex(5)] } as never);
    expect(await admin.publicClient.getBlockNumber({ cacheTime: 0 })).toBe(latest);
    const t = task(m, votes);
    const receipt = await settleBatch(coordinator, fx.address, [t, task(m2, onlyWithLapsed)]);
    expect(receipt.rejected.map((r) => [r.taskId, r.errorName])).toEqual([[m2.taskId, 'QuorumNotReached']]);
    expect(receipt.settled).toEqual([m.taskId]);
    expect(receipt.blockNumber).toBe(latest + 1n);
    expect((await skippedVotes(fx)).map((s) => s.worker)).toEqual([lapsing.worker]);
  });
});

describe('grants', () => {
  it('caches a verified grant: later batches send no grant; a grant for another chain is skipped', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const first = metrics();
    await settleBatch(coordinator, fx.address, [task(first, await votesFor(fx, first, ss, 2))]);
    expect(await grantOf(admin.publicClient, fx.address, ss[0].worker)).toEqual({
      sessionKey: ss[0].sessionKey.address,
      expiresAt: ss[0].expiresAt,
    });
    const m = metrics();
    const prepared = await prepareSettle(coordinator, fx.address, coordinator.wallet.account, [
      task(m, await votesFor(fx, m, ss, 2)),
    ]);
    expect(prepared.args[2]).toEqual([]);

    const elsewhere = cambrianDomain(1, fx.address);
    const foreign = await openSession(workers[2], workers[2].address, elsewhere, ss[0].expiresAt);
    const n = metrics();
    const vote = await castVote(foreign, fx.domain, n.taskId, resultDigest(n));
    const fromOwnKeys = await Promise.all(
      [workers[3], workers[4]].map((w) => castOwnVote(w, fx.domain, n.taskId, resultDigest(n))),
    );
    const t = task(n, [...fromOwnKeys, vote]);
    await settleBatch(coordinator, fx.address, [t]);
    expect((await skippedVotes(fx)).filter((s) => s.seq === t.seq)).toEqual([
      { seq: t.seq, worker: workers[2].address, reason: 1 },
    ]);
  });

  it('revokeSession of any other key keeps the cached grant (finding: revokeSession(anything) broke the cache)', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const first = metrics();
    await settleBatch(coordinator, fx.address, [task(first, await votesFor(fx, first, ss, 2))]);
    const worker0 = await connectChain(node.rpcUrl, workers[0]);
    await revokeSession(worker0, fx.address, '0x000000000000000000000000000000000000dEaD');
    const m = metrics();
    const omitted = await Promise.all(
      ss.map((s) => castVote(s, fx.domain, m.taskId, resultDigest(m), { omitGrant: true })),
    );
    const t = task(m, omitted);
    await settleBatch(coordinator, fx.address, [t]);
    expect(await read(fx).owed(ss[0].worker)).toBe(REWARD);
    expect(await skippedVotes(fx)).toEqual([]);
    // Revoking the cached key itself does drop it, and its votes are skipped as revoked from then on.
    await revokeSession(worker0, fx.address, ss[0].sessionKey.address);
    expect(await grantOf(admin.publicClient, fx.address, ss[0].worker)).toBeUndefined();
    const n = metrics();
    const votes = [
      ...(await votesFor(fx, n, ss, 2)),
      await castOwnVote(workers[2], fx.domain, n.taskId, resultDigest(n)),
    ];
    const u = task(n, votes);
    await settleBatch(coordinator, fx.address, [u]);
    expect(await skippedVotes(fx)).toEqual([{ seq: u.seq, worker: ss[0].worker, reason: 3 }]);
  });

  it('gives a smart-account worker only ERC1271_GAS: a gas-burning wallet cannot sink the batch (finding: ERC-1271 burns a batch)', async () => {
    const fx = await deploy();
    const attacker = compileTestContract('contracts/test/Reentrant.sol', 'Reentrant');
    const deployTx = await admin.wallet.deployContract({
      abi: attacker.abi,
      bytecode: attacker.bytecode,
      args: [fx.address],
    });
    const wallet = (await admin.publicClient.waitForTransactionReceipt({ hash: deployTx })).contractAddress!;
    await mined(admin, {
      address: wallet,
      abi: attacker.abi,
      functionName: 'setBurnGas',
      args: [true],
    });
    const sessionKey = anvilAccount(8);
    const expiresAt = (await chainTime()) + 3600n;
    const session: WorkerSession = {
      worker: wallet,
      sessionKey,
      expiresAt,
      grantSig: `0x${'11'.repeat(65)}`,
    };
    const ss = await sessions(fx, 2);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      ...(await Promise.all(ss.map((s) => castVote(s, fx.domain, m.taskId, digest)))),
      await castVote(session, fx.domain, m.taskId, digest),
    ];
    const receipt = await settleBatch(coordinator, fx.address, [task(m, votes)]);
    expect(receipt.settled).toEqual([m.taskId]);
    expect(receipt.gasUsed).toBeLessThan(400_000n);
    const skips = await admin.publicClient.getContractEvents({
      address: fx.address,
      abi: settlementAbi,
      eventName: 'GrantSkipped',
      fromBlock: 0n,
    });
    expect(skips.map((s) => s.args.worker)).toEqual([getAddress(wallet)]);
  });
});

describe('referee verdicts (disputes on chain)', () => {
  it('settles the honest digest of a single vote against two liars, pays it and strikes both', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 3);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      await castVote(ss[0], fx.domain, m.taskId, digest),
      await castVote(ss[1], fx.domain, m.taskId, wrongDigest(7)),
      await castVote(ss[2], fx.domain, m.taskId, wrongDigest(7)),
    ];
    expect(await verdictOn(fx, [task(m, votes)])).toBe('NoMajority');
    const verdictSig = await signRefereeVerdict(referee, fx.domain, { taskId: m.taskId, digest });
    const t = task(m, votes, { verdictSig });
    await settleBatch(coordinator, fx.address, [t]);
    expect(await read(fx).owed(ss[0].worker)).toBe(REWARD);
    expect(await read(fx).strikes(ss[1].worker)).toBe(1n);
    expect(await read(fx).strikes(ss[2].worker)).toBe(1n);
    const [event] = await readSettledEvents(admin.publicClient, fx.address);
    expect(event).toMatchObject({
      refereed: true,
      winners: [ss[0].worker],
      dissenters: [ss[1].worker, ss[2].worker],
    });
  });

  it('rejects a verdict not signed by the referee (the coordinator key cannot sign one)', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2);
    const m = metrics();
    const digest = resultDigest(m);
    const votes = [
      await castVote(ss[0], fx.domain, m.taskId, digest),
      await castVote(ss[1], fx.domain, m.taskId, wrongDigest(2)),
    ];
    const forged = await signRefereeVerdict(anvilAccount(6), fx.domain, { taskId: m.taskId, digest });
    expect(await verdictOn(fx, [task(m, votes, { verdictSig: forged })])).toBe('InvalidVerdict');
    const wrongDigestVerdict = await signRefereeVerdict(referee, fx.domain, {
      taskId: m.taskId,
      digest: wrongDigest(2),
    });
    expect(await verdictOn(fx, [task(m, votes, { verdictSig: wrongDigestVerdict })])).toBe('InvalidVerdict');
  });
});

describe('a stolen coordinator key (finding: the coordinator key alone can empty the pool)', () => {
  it('invents tasks with its own keys only up to the epoch cap; the admin voids them within the window', async () => {
    const cap = 5n * REWARD;
    const fx = await deploy({ cap });
    const thieves = [anvilAccount(8), anvilAccount(9)];
    const invent = async () => {
      const m = metrics();
      return task(
        m,
        await Promise.all(thieves.map((k) => castOwnVote(k, fx.domain, m.taskId, resultDigest(m)))),
      );
    };
    const batch = await Promise.all(Array.from({ length: 8 }, invent));
    expect(await verdictOn(fx, batch)).toBe('PayoutCapReached');
    const receipt = await settleBatch(coordinator, fx.address, batch);
    expect(receipt.settled).toHaveLength(5);
    expect(receipt.deferred).toHaveLength(3);
    expect(await read(fx).pool()).toBe(POOL - cap);
    // Nothing is claimable before the challenge window has passed.
    expect(await read(fx).claimable(thieves[0].address)).toBe(0n);
    await expect(claim(await connectChain(node.rpcUrl, thieves[0]), fx.address)).rejects.toThrow(
      /NothingToClaim/,
    );

    const perVote = (await readSettledEvents(admin.publicClient, fx.address)).flatMap((e) =>
      e.winners.map((worker) => ({ worker, amount: REWARD / 2n })),
    );
    // The batch commits one total per worker (table order), not one entry per vote.
    const credits = voidCredits(perVote);
    expect(credits).toHaveLength(2);
    const epoch = Number(
      await admin.publicClient.readContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'currentEpoch',
      }),
    );
    const voidArgs = [0n, OPERATOR_SEARCH, epoch, credits] as const;
    // The coordinator cannot void (nor set terms, nor withdraw the sponsor's funds).
    const denied = async (p: Promise<unknown>) =>
      contractErrorOf(
        await p.then(
          () => undefined,
          (e) => e,
        ),
      )?.errorName;
    expect(
      await denied(
        coordinator.publicClient.simulateContract({
          address: fx.address,
          abi: settlementAbi,
          functionName: 'voidBatch',
          args: voidArgs,
          account: coordinator.wallet.account,
        }),
      ),
    ).toBe('NotWatcher');
    expect(
      await denied(
        coordinator.publicClient.simulateContract({
          address: fx.address,
          abi: settlementAbi,
          functionName: 'setRewardPerTask',
          args: [POOL],
          account: coordinator.wallet.account,
        }),
      ),
    ).toBe('AccessControlUnauthorizedAccount');
    expect(
      await denied(
        coordinator.publicClient.simulateContract({
          address: fx.address,
          abi: settlementAbi,
          functionName: 'withdraw',
          args: [1n],
          account: coordinator.wallet.account,
        }),
      ),
    ).toBe('WithdrawTooLarge');
    expect(
      await denied(
        admin.publicClient.simulateContract({
          address: fx.address,
          abi: settlementAbi,
          functionName: 'voidBatch',
          args: [0n, OPERATOR_SEARCH, epoch, perVote],
          account: admin.wallet.account,
        }),
      ),
    ).toBe('UnknownCommitment');
    await mined(admin, {
      address: fx.address,
      abi: settlementAbi,
      functionName: 'voidBatch',
      args: voidArgs,
    });
    expect(await read(fx).pool()).toBe(POOL);
    expect(await read(fx).owed(thieves[0].address)).toBe(0n);
  });

  it('cannot have a batch voided after the window, and honest credit becomes claimable (claimTo) after it', async () => {
    const fx = await deploy();
    const ss = await sessions(fx, 2, 100_000n);
    const m = metrics();
    await settleBatch(coordinator, fx.address, [task(m, await votesFor(fx, m, ss, 2))]);
    const epoch = Number(
      await admin.publicClient.readContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'currentEpoch',
      }),
    );
    await advance(2 * EPOCH);
    const credits = voidCredits(ss.map((s) => ({ worker: s.worker, amount: REWARD / 2n })));
    const late = await admin.publicClient
      .simulateContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'voidBatch',
        args: [0n, OPERATOR_SEARCH, epoch, credits],
        account: admin.wallet.account,
      })
      .catch((e) => e);
    expect(contractErrorOf(late)?.errorName).toBe('ChallengeWindowClosed');
    expect(await read(fx).claimable(ss[0].worker)).toBe(REWARD / 2n);
    const to = '0x00000000000000000000000000000000000c1a1e';
    const worker = await connectChain(node.rpcUrl, workers[0]);
    expect((await claim(worker, fx.address, to)).amount).toBe(REWARD / 2n);
    expect(await admin.publicClient.getBalance({ address: to })).toBe(REWARD / 2n);
    expect(await read(fx).owed(ss[0].worker)).toBe(0n);
  });
});

describe('terms and funds (info findings)', () => {
  it('reward and quorum changes apply from the next epoch only; quorum 1 is refused', async () => {
    const fx = await deploy();
    const write = (functionName: 'setRewardPerTask' | 'setMinQuorum', value: bigint) =>
      admin.wallet
        .writeContract({ address: fx.address, abi: settlementAbi, functionName, args: [value] })
        .then((hash) => admin.publicClient.waitForTransactionReceipt({ hash }));
    const quorumOne = await admin.publicClient
      .simulateContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'setMinQuorum',
        args: [1n],
        account: admin.wallet.account,
      })
      .catch((e) => e);
    expect(contractErrorOf(quorumOne)?.errorName).toBe('InvalidQuorum');
    await write('setRewardPerTask', 2n * REWARD);
    await write('setMinQuorum', 3n);
    const ss = await sessions(fx, 3, 100_000n);
    const m = metrics();
    await settleBatch(coordinator, fx.address, [task(m, await votesFor(fx, m, ss.slice(0, 2), 2))]);
    expect(await read(fx).owed(ss[0].worker)).toBe(REWARD / 2n);
    await advance(EPOCH);
    expect((await readConfig(admin.publicClient, fx.address)).minQuorum).toBe(3);
    const n = metrics();
    expect(await verdictOn(fx, [task(n, await votesFor(fx, n, ss.slice(0, 2), 2))])).toBe('QuorumNotReached');
    await settleBatch(coordinator, fx.address, [task(n, await votesFor(fx, n, ss, 3))]);
    expect(await read(fx).owed(ss[0].worker)).toBe(REWARD / 2n + (2n * REWARD) / 3n);
  });

  it('a sponsor withdraws only its own funding, and only what nobody is owed', async () => {
    const fx = await deploy({ fund: 3n * REWARD });
    const sponsor = await connectChain(node.rpcUrl, anvilAccount(5));
    await fund(sponsor, fx.address, REWARD);
    const ss = await sessions(fx, 2);
    const batch = [];
    for (let i = 0; i < 3; i++) {
      const m = metrics();
      batch.push(task(m, await votesFor(fx, m, ss, 2)));
    }
    await settleBatch(coordinator, fx.address, batch);
    expect(await read(fx).pool()).toBe(REWARD);
    const tooMuch = await admin.publicClient
      .simulateContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'withdraw',
        args: [2n * REWARD],
        account: admin.wallet.account,
      })
      .catch((e) => e);
    expect(contractErrorOf(tooMuch)?.errorName).toBe('WithdrawTooLarge');
    await mined(sponsor, {
      address: fx.address,
      abi: settlementAbi,
      functionName: 'withdraw',
      args: [REWARD],
    });
    expect(await read(fx).pool()).toBe(0n);
    expect(await read(fx).owed(ss[0].worker)).toBe((3n * REWARD) / 2n);
  });

  it("two sponsors' searches side by side: each pays only its own tasks, at its own reward; close, grace, withdraw", async () => {
    const fx = await deploy({ fund: POOL });
    const alice = await connectChain(node.rpcUrl, anvilAccount(8));
    const bob = await connectChain(node.rpcUrl, anvilAccount(9));
    const a = keccak256(toHex('search a'));
    const b = keccak256(toHex('search b'));
    await openSearch(alice, fx.address, a, { rewardPerTask: 4n * REWARD, fund: 13n * REWARD });
    await openSearch(bob, fx.address, b, { rewardPerTask: REWARD, fund: 3n * REWARD });
    const ss = await sessions(fx, 2);
    const batchOf = async (n: number) => {
      const out: SettlementInput[] = [];
      for (let i = 0; i < n; i++) {
        const m = metrics();
        out.push(task(m, await votesFor(fx, m, ss, 2)));
      }
      return out;
    };
    const before = await read(fx).owed(ss[0].worker);
    const forA = await batchOf(2);
    await settleBatch(coordinator, fx.address, forA, { searchId: a });
    await settleBatch(coordinator, fx.address, await batchOf(1), { searchId: b });
    expect((await searchOf(admin.publicClient, fx.address, a))?.pool).toBe(5n * REWARD);
    expect((await searchOf(admin.publicClient, fx.address, b))?.pool).toBe(2n * REWARD);
    expect(await read(fx).pool()).toBe(POOL); // the operator's pool paid nothing
    expect((await read(fx).owed(ss[0].worker)) - before).toBe(4n * REWARD + REWARD / 2n);
    const events = await readSettledEvents(admin.publicClient, fx.address, { taskId: forA[0].taskId });
    expect(events.map((e) => e.searchId)).toEqual([a]);

    // Only the sponsor closes; a closed search still settles during the grace, then refuses; withdraw after it.
    const notMine = await bob.publicClient
      .simulateContract({
        address: fx.address,
        abi: settlementAbi,
        functionName: 'closeSearch',
        args: [a],
        account: bob.wallet.account,
      })
      .catch((e) => e);
    expect(contractErrorOf(notMine)?.errorName).toBe('NotSponsor');
    await closeSearch(alice, fx.address, a);
    await expect(withdrawSearch(alice, fx.address, a)).rejects.toThrow(/SearchStillSettling/);
    await settleBatch(coordinator, fx.address, await batchOf(1), { searchId: a });
    const grace = Number(await searchGrace(admin.publicClient, fx.address));
    await advance(grace);
    await expect(
      settleBatch(coordinator, fx.address, await batchOf(1), { searchId: a, skipRejected: false }),
    ).rejects.toThrow(/SearchNotOpen/);
    await expect(withdrawSearch(bob, fx.address, a)).rejects.toThrow(/NotSponsor/);
    const { amount } = await withdrawSearch(alice, fx.address, a);
    expect(amount).toBe(REWARD); // 13 funded, 3 tasks of 4 paid
    expect((await searchOf(admin.publicClient, fx.address, a))?.pool).toBe(0n);
    expect((await searchOf(admin.publicClient, fx.address, b))?.pool).toBe(2n * REWARD);
  });

  it('the admin is not the coordinator: deploy refuses one key for both, and the handover is two-step', async () => {
    await expect(
      deploySettlement(admin, {
        admin: admin.wallet.account.address,
        coordinator: admin.wallet.account.address,
        rewardPerTask: REWARD,
        minQuorum: 2,
      }),
    ).rejects.toThrow(/admin must not be the coordinator/);
    const fx = await deploy();
    const delay = await admin.publicClient.readContract({
      address: fx.address,
      abi: settlementAbi,
      functionName: 'defaultAdminDelay',
    });
    expect(delay).toBe(2 * 86_400);
  });
});
