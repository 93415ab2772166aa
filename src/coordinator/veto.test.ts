/**
 * Vetoes on a real anvil with a real coordinator (PGlite): voters that revoke their session key after
 * voting make their votes invalid on chain, but cannot make the task fail. A task left with one valid
 * winner settles under the referee's verdict; a task left with none reopens for fresh replicas from
 * other workers and settles the honest digest.
 */
import type { Hex, LocalAccount } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, expect, it } from 'vitest';
import { connectChain, owed, readSettledEvents, revokeSession, strikes } from '../chain/client.ts';
import { loadDataset } from '../data/node.ts';
import { trainCpu } from '../engine/train-cpu.ts';
import { type AnyTaskSpec, createSessionKey, signSessionGrant, type TaskResult } from '../protocol/index.ts';
import { CoordinatorClient } from './client.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { privateKeyOf, startTestChain, type TestChain, tinySpec } from './testing.ts';

let chain: TestChain | undefined;
let db: Db | undefined;
let coordinator: Coordinator | undefined;
afterAll(async () => {
  await coordinator?.close();
  await db?.close();
  await chain?.stop();
});

interface Voter {
  account: LocalAccount;
  sessionKey: LocalAccount;
  client: CoordinatorClient;
}

async function voter(index: number): Promise<Voter> {
  const account = privateKeyToAccount(privateKeyOf(index));
  const sessionKey = createSessionKey();
  const client = new CoordinatorClient(coordinator!.url);
  await client.openSession({
    worker: account.address,
    sessionKey,
    signGrant: (typed) => signSessionGrant(account, typed.domain, typed.message),
  });
  return { account, sessionKey, client };
}

async function honestResult(spec: AnyTaskSpec): Promise<TaskResult> {
  return trainCpu(spec, await loadDataset(spec.dataset.name, spec.dataset.sha256));
}

/** Leases `taskId` (the only open task) and votes the honest result. */
async function vote(v: Voter, taskId: Hex, honest: TaskResult): Promise<void> {
  const lease = await v.client.lease();
  expect(lease?.taskId).toBe(taskId);
  await v.client.submit(lease!.leaseId, honest);
}

async function revoke(v: Voter): Promise<void> {
  const conn = await connectChain(chain!.settings.rpcUrl, v.account);
  await revokeSession(conn, chain!.settings.settlement, v.sessionKey.address);
}

const taskState = async (taskId: Hex) =>
  (await db!.query<{ state: string }>('SELECT state FROM tasks WHERE task_id = $1', [taskId]))[0].state;

it('revoked winning votes neither fail the task nor pay the revokers; the honest digest settles', async () => {
  chain = await startTestChain();
  db = await openDb({ url: 'memory://' });
  coordinator = await startCoordinator({
    db,
    chain: chain.settings,
    // The voters keep no states: the audit recomputes from step 0 at once.
    queue: { stateWaitMs: 0 },
    rateLimits: false,
    // Loops run only when the test ticks.
    settleMs: 3_600_000,
    sweepMs: 3_600_000,
    searchMs: 3_600_000,
    log: () => {},
  });
  const [a, b, c, d, e, f] = await Promise.all([3, 4, 5, 6, 7, 8].map(voter));

  // Task 1: both replicas vote the honest digest, then both revoke their session keys.
  const spec1 = tinySpec(900);
  const task1 = (await coordinator.store.addTask(spec1))!;
  const honest1 = await honestResult(spec1);
  await vote(a, task1, honest1);
  await vote(b, task1, honest1);
  // Task 2: both vote honestly, one revokes.
  const spec2 = tinySpec(901);
  const task2 = (await coordinator.store.addTask(spec2))!;
  const honest2 = await honestResult(spec2);
  await vote(e, task2, honest2);
  await vote(f, task2, honest2);
  await Promise.all([a, b, f].map(revoke));

  await coordinator.tick(); // the audits pass; the settler drops the revoked votes
  expect(await taskState(task2)).toBe('settled');
  expect(await taskState(task1)).toBe('open');
  const vetoed = await db.query<{ worker: string; verdict: string }>(
    'SELECT worker, verdict FROM votes WHERE task_id = $1 ORDER BY worker',
    [task1],
  );
  expect(vetoed.map((v) => v.verdict)).toEqual(['vetoed', 'vetoed']);
  for (const v of [a, b, f])
    expect(await coordinator.store.trustOf(v.account.address)).toEqual({ audited: 0, failures: 1 });

  // The vetoing workers never get task 1 back; two other workers take it and vote the honest digest.
  expect(await a.client.lease()).toBeNull();
  expect(await b.client.lease()).toBeNull();
  await vote(c, task1, honest1);
  await vote(d, task1, honest1);
  await coordinator.tick(); // audit again, then settle
  expect(await taskState(task1)).toBe('settled');

  const conn = await connectChain(chain.settings.rpcUrl);
  const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
  const byTask = new Map(events.map((ev) => [ev.taskId, ev]));
  expect(byTask.get(task1)).toMatchObject({ digest: honest1.digest, refereed: false });
  expect(new Set(byTask.get(task1)!.winners)).toEqual(new Set([c.account.address, d.account.address]));
  // One valid winner left: settled under the referee's verdict, the revoker left out.
  expect(byTask.get(task2)).toMatchObject({
    digest: honest2.digest,
    refereed: true,
    winners: [e.account.address],
  });
  for (const v of [a, b, f])
    expect(await owed(conn.publicClient, chain.settings.settlement, v.account.address)).toBe(0n);
  for (const v of [c, d, e])
    expect(await owed(conn.publicClient, chain.settings.settlement, v.account.address)).toBeGreaterThan(0n);
  for (const v of [a, b, c, d, e, f])
    expect(await strikes(conn.publicClient, chain.settings.settlement, v.account.address)).toBe(0n);
  const [{ failed }] = await db.query<{ failed: number }>(
    `SELECT count(*)::int AS failed FROM tasks WHERE state = 'failed'`,
  );
  expect(failed).toBe(0);
});
