/**
 * The referee recomputes only the diverging checkpoint interval, from the agreed state a voter
 * uploads (checked against the agreed stateHash), and falls back to step 0 when none arrives; the side
 * it supports then goes to the audit.
 * Real coordinator (HTTP API, PGlite), real headless worker (CPU engine), real CPU referee.
 */
import type { Hex, LocalAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { trainCpuRun } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import { cambrianDomain, createSessionKey, signSessionGrant } from '../protocol/eip712.ts';
import type { TaskResult, TaskSpec } from '../protocol/index.ts';
import { runHeadlessWorker } from '../worker/headless/worker.ts';
import { CoordinatorClient, CoordinatorError, type WorkerEvent } from './client.ts';
import { type Db, openDb } from './db.ts';
import { refereePending, type Verdict } from './referee.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { StateExchange } from './states.ts';
import { Store } from './store.ts';
import { divergentResult, tinySpec, until } from './testing.ts';

// Longer than any test here takes, however loaded the machine: a test that wants the deadline
// passed asks a referee whose wait is 0 (refereeStore(0)) instead of sleeping past it.
const STATE_WAIT_MS = 600_000;

/** The honest result of a spec and its state at every checkpoint. */
async function honestRun(spec: TaskSpec): Promise<{ result: TaskResult; states: TrainState[] }> {
  const states: TrainState[] = [];
  const { result } = await trainCpuRun(spec, await loadDataset('blobs'), {
    onCheckpoint: (s) => states.push(s),
  });
  return { result, states };
}

async function clientFor(url: string, account: LocalAccount): Promise<CoordinatorClient> {
  const client = new CoordinatorClient(url);
  await client.openSession({
    worker: account.address,
    sessionKey: createSessionKey(),
    signGrant: (typed) => signSessionGrant(account, typed.domain, typed.message),
  });
  return client;
}

async function refusal(p: Promise<unknown>): Promise<CoordinatorError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CoordinatorError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('referee over one checkpoint interval', () => {
  let db: Db;
  let coordinator: Coordinator;
  let stop = new AbortController();
  const running: Promise<number>[] = [];

  beforeAll(async () => {
    db = await openDb({ url: 'memory://' });
    coordinator = await startCoordinator({
      db,
      domain: cambrianDomain(31337, `0x${'12'.repeat(20)}`),
      // Two replicas at most: one honest and one wrong vote stay split and go to the referee.
      queue: { leaseMs: 30_000, quorum: 2, initialReplicas: 2, maxReplicas: 2, stateWaitMs: STATE_WAIT_MS },
      search: null,
      // The test drives the referee itself.
      sweepMs: 600_000,
      settleMs: 600_000,
      searchMs: 600_000,
      log: () => {},
    });
  });

  /** The referee's store: the honest side has one vote, so it may settle with one (as in store.test.ts). */
  const refereeStore = (stateWaitMs = STATE_WAIT_MS) =>
    new Store(db, { ...coordinator.store.opts, quorum: 1, stateWaitMs });

  afterEach(async () => {
    stop.abort();
    await Promise.allSettled(running.splice(0));
    stop = new AbortController();
  });

  afterAll(async () => {
    await coordinator?.close();
    await db?.close();
  });

  const task = async (taskId: Hex) =>
    (
      await db.query<{ state: string; agreed_digest: Hex | null; referee: Verdict | null }>(
        'SELECT state, agreed_digest, referee FROM tasks WHERE task_id = $1',
        [taskId],
      )
    )[0];

  /** Leases the task's remaining replica as `client` and submits `result` for it. */
  async function submitAs(client: CoordinatorClient, result: TaskResult): Promise<void> {
    const lease = await until('a lease', async () => (await client.lease()) ?? undefined);
    expect(lease.taskId).toBe(result.taskId);
    await client.submit(lease.leaseId, result);
  }

  it('recomputes only the diverging interval from the state an honest voter uploads', async () => {
    const spec = tinySpec(301, { steps: 12 });
    const { result: honest } = await honestRun(spec);
    const wrong = divergentResult(honest, 3); // agrees at checkpoints 0..2 (steps 2, 4, 6), not at step 8
    await coordinator.store.addTask(spec);
    const events: WorkerEvent[] = [];
    running.push(
      runHeadlessWorker({
        coordinator: coordinator.url,
        account: privateKeyToAccount(generatePrivateKey()),
        backend: 'cpu',
        stop: stop.signal,
        idleMs: 50,
        onEvent: (e) => events.push(e),
      }),
    );
    await until('the honest worker to submit', async () => events.some((e) => e.type === 'submitted'));
    await submitAs(await clientFor(coordinator.url, privateKeyToAccount(generatePrivateKey())), wrong);
    expect((await task(honest.taskId as Hex)).state).toBe('refereeing');

    // First round: the referee asks for the state at step 6 and waits.
    expect(await refereePending(db, refereeStore())).toBe(0);
    const uploaded = await until('the honest worker to upload its state', async () =>
      events.find((e) => e.type === 'state'),
    );
    expect(uploaded).toMatchObject({ type: 'state', taskId: honest.taskId, step: 6, uploaded: true });
    expect(await refereePending(db, refereeStore())).toBe(1);

    // The supported side goes on to the audit (store.test.ts has the rest of its way).
    const after = await task(honest.taskId as Hex);
    expect(after.state).toBe('auditing');
    expect(after.referee).toMatchObject({
      winner: honest.digest,
      right: null,
      wrong: [wrong.digest],
      start: 'uploaded',
      startStep: 6,
      stepsRecomputed: 2, // (6, 8] only, not 0..8
      intervals: [{ fromStep: 6, toStep: 8, refereeHash: honest.checkpoints[3].stateHash }],
    });
    // The decided task's request and state are gone.
    expect(await db.query('SELECT 1 FROM state_requests WHERE task_id = $1', [honest.taskId])).toHaveLength(
      0,
    );
  });

  it('refuses a forged state (4xx, not used) and falls back to step 0 when no valid state arrives', async () => {
    const spec = tinySpec(302, { steps: 12 });
    const { result: honest, states } = await honestRun(spec);
    const wrong = divergentResult(honest, 4); // last agreed checkpoint: index 3 (step 8)
    await coordinator.store.addTask(spec);
    // Two voters that keep no states (like the browser contributor) and one outsider.
    const [a, b, outsider] = await Promise.all(
      [0, 1, 2].map(() => clientFor(coordinator.url, privateKeyToAccount(generatePrivateKey()))),
    );
    await submitAs(a, honest);
    await submitAs(b, wrong);
    expect(await refereePending(db, refereeStore())).toBe(0); // request opened for step 8

    // The voters learn of the request from the lease route (each is asked once).
    const asked = await until('the state request', () => a.leaseOrStateRequest());
    expect(asked).toMatchObject({ kind: 'state', taskId: honest.taskId, step: 8 });
    expect(await a.leaseOrStateRequest()).toBeNull();

    const at = (step: number) => states.find((s) => s.step === step)!;
    const taskId = honest.taskId as Hex;
    // A real state, but of another checkpoint: its hash is not the agreed one at step 8.
    const forged = { ...at(6), step: 8 };
    expect((await refusal(b.uploadState(taskId, forged))).status).toBe(422);
    const flipped = { step: 8, params: at(8).params.slice(), momentum: at(8).momentum };
    flipped.params[0] ^= 1;
    expect((await refusal(b.uploadState(taskId, flipped))).reason).toMatch(/does not hash/);
    const short = { step: 8, params: at(8).params.subarray(1), momentum: at(8).momentum };
    expect((await refusal(b.uploadState(taskId, short))).status).toBe(422);
    expect((await refusal(outsider.uploadState(taskId, at(8)))).status).toBe(403);
    expect((await refusal(a.uploadState(taskId, { ...at(6), step: 7 }))).status).toBe(404);

    // Still waiting (nothing valid arrived); after the deadline, from step 0.
    expect(await refereePending(db, refereeStore())).toBe(0);
    expect(await refereePending(db, refereeStore(0))).toBe(1);
    const after = await task(taskId);
    expect(after.referee).toMatchObject({
      winner: honest.digest,
      wrong: [wrong.digest],
      start: 'fallback',
      startStep: 0,
      stepsRecomputed: 10, // 0..10: the first divergence is at step 10
    });
  });

  it('a state that hashes right is accepted once; divergence at the first checkpoint needs none', async () => {
    const spec = tinySpec(303, { steps: 8 });
    const { result: honest, states } = await honestRun(spec);
    await coordinator.store.addTask(spec);
    const [a, b] = await Promise.all(
      [0, 1].map(() => clientFor(coordinator.url, privateKeyToAccount(generatePrivateKey()))),
    );
    await submitAs(a, honest);
    await submitAs(b, divergentResult(honest, 2));
    const exchange = new StateExchange(db, 0);
    expect(await refereePending(db, refereeStore(), () => {}, { states: exchange })).toBe(0);
    const taskId = honest.taskId as Hex;
    await b.uploadState(taskId, states[1]); // the wrong side may upload the agreed state too
    expect((await refusal(a.uploadState(taskId, states[1]))).status).toBe(409);
    expect(await refereePending(db, refereeStore(), () => {}, { states: exchange })).toBe(1);
    expect((await task(taskId)).referee).toMatchObject({
      start: 'uploaded',
      startStep: 4,
      stepsRecomputed: 2,
    });

    const first = tinySpec(304, { steps: 8 });
    const early = (await honestRun(first)).result;
    await coordinator.store.addTask(first);
    await submitAs(a, early);
    await submitAs(b, divergentResult(early, 0));
    expect(await refereePending(db, refereeStore())).toBe(1); // decided at once, from the initial weights
    expect((await task(early.taskId as Hex)).referee).toMatchObject({
      winner: early.digest,
      start: 'initial',
      startStep: 0,
      stepsRecomputed: 2,
    });
  });
});
