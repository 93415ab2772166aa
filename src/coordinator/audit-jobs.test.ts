/**
 * Audits done by workers, on a real coordinator (PGlite) with the shipped headless workers: honest
 * auditors verify without the coordinator's CPU, a lying auditor is refuted and struck, voters who
 * lie in the last interval (honest everywhere else) are caught, a top result is re-executed, and a
 * dispute between consistent liars and honest workers is bisected to the planted step.
 */
import type { Hex, LocalAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterEach, describe, expect, it } from 'vitest';
import { plantedReplay, plantedResult } from '../bench/planted.ts';
import { loadDataset } from '../data/node.ts';
import { cambrianDomain } from '../protocol/eip712.ts';
import { type TaskResult, TaskSpecSchema } from '../protocol/index.ts';
import { runHeadlessWorker } from '../worker/headless/worker.ts';
import type { AuditRecord } from './audit.ts';
import { AuditJobs, drawAuditor, type JobRow } from './audit-jobs.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { divergentResult, tinySpec, until } from './testing.ts';

const DOMAIN = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

describe('drawAuditor', () => {
  const c = (worker: string, audited: number, failures = 0) => ({ worker, audited, failures });
  it('weights by verified results, never draws an excluded or caught worker, and is uniform at the start', () => {
    const pool = [c('a', 0), c('b', 30), c('c', 10), c('d', 500, 1)];
    expect(drawAuditor(pool, new Set(), 0)).toBe('b');
    expect(drawAuditor(pool, new Set(), 0.74)).toBe('b');
    expect(drawAuditor(pool, new Set(), 0.76)).toBe('c');
    expect(drawAuditor(pool, new Set(['b']), 0)).toBe('c');
    expect(drawAuditor(pool, new Set(['b', 'c']), 0.5)).toBe('a'); // only zero-count workers left: uniform
    expect(drawAuditor(pool, new Set(['a', 'b', 'c']), 0.5)).toBeNull(); // d was caught
  });
});

describe('audit jobs on a real coordinator', () => {
  let db: Db;
  let coordinator: Coordinator;
  let stop: AbortController;
  let running: Promise<number>[];

  async function start() {
    db = await openDb({ url: 'memory://' });
    coordinator = await startCoordinator({
      db,
      domain: DOMAIN,
      queue: { leaseMs: 20_000, quorum: 2, initialReplicas: 2, maxReplicas: 3, stateWaitMs: 10_000 },
      auditJobs: { answerMs: 10_000 },
      rateLimits: false,
      sweepMs: 200,
      settleMs: 100,
      log: () => {},
    });
    stop = new AbortController();
    running = [];
  }

  function worker(account: LocalAccount, opts: Partial<Parameters<typeof runHeadlessWorker>[0]> = {}) {
    running.push(
      runHeadlessWorker({
        coordinator: coordinator.url,
        account,
        backend: 'cpu',
        stop: stop.signal,
        heartbeatMs: 500,
        idleMs: 50,
        ...opts,
      }),
    );
  }

  afterEach(async () => {
    stop.abort();
    await Promise.allSettled(running);
    await coordinator.close();
    await db.close();
  });

  const accounts = (n: number) => Array.from({ length: n }, () => privateKeyToAccount(generatePrivateKey()));
  const task = (taskId: Hex) =>
    db.query<{ state: string; audit: AuditRecord | null; agreed_digest: Hex | null; referee: unknown }>(
      'SELECT state, audit, agreed_digest, referee FROM tasks WHERE task_id = $1',
      [taskId],
    );
  /** Waits until some worker has asked for verification work (it can then be drawn). */
  const auditorAvailable = () =>
    until('an auditor is available', async () => (await db.query('SELECT 1 FROM auditors')).length > 0);
  const failuresOf = async (w: string) =>
    (await db.query<{ failures: number }>('SELECT failures FROM worker_trust WHERE worker = $1', [w]))[0]
      ?.failures ?? 0;

  it('honest auditors verify agreed tasks without the coordinator replaying anything; top results are re-executed', async () => {
    await start();
    const ids: Hex[] = [];
    for (let t = 0; t < 3; t++) ids.push((await coordinator.store.addTask(tinySpec(600 + t, { steps: 8 })))!);
    for (const a of accounts(4)) worker(a);
    for (const id of ids)
      await until(`task ${id} agreed`, async () => (await task(id))[0].state === 'agreed');
    for (const id of ids) {
      const [row] = await task(id);
      expect(row.audit?.passed).toBe(true);
      expect(row.audit?.start).toBe('workers');
      expect(row.audit?.stepsRecomputed).toBe(0);
      // Three results in a search: each ranked in the first 20, so each was re-executed whole.
      expect(row.audit?.reexecution).toBe(true);
      expect(row.audit?.stepsByWorkers).toBeGreaterThanOrEqual(8);
    }
    const left = await db.query('SELECT * FROM audit_jobs');
    expect(left).toEqual([]);
  });

  it('refutes and strikes an auditor whose answer is wrong, and the honest votes still pass', async () => {
    await start();
    const [a, b, liar] = accounts(3);
    const id = (await coordinator.store.addTask(tinySpec(610, { steps: 8 })))!;
    // The liar only verifies (it takes no leases), and is available before the votes come in.
    worker(liar, {
      forgeAudit: (answer) => ({ ...answer, stateHash: `0x${'ab'.repeat(32)}` }),
      leases: false,
    });
    await auditorAvailable();
    worker(a);
    worker(b);
    await until('task agreed', async () => (await task(id))[0].state === 'agreed');
    const [row] = await task(id);
    expect(row.audit?.passed).toBe(true);
    expect(row.audit?.refuted).toContain(liar.address);
    expect(await failuresOf(liar.address)).toBeGreaterThanOrEqual(1); // one per wrong answer
    expect(await failuresOf(a.address)).toBe(0);
    expect(await failuresOf(b.address)).toBe(0);
  });

  it('catches voters who lie only in the last interval: an honest auditor disagrees, the CPU referee confirms', async () => {
    await start();
    const [x, y, honest] = accounts(3);
    const spec = tinySpec(620, { steps: 8 });
    const id = (await coordinator.store.addTask(spec))!;
    const lieLast = (r: TaskResult) => divergentResult(r, r.checkpoints.length - 1);
    worker(honest, { leases: false });
    await auditorAvailable();
    worker(x, { forge: lieLast, audits: false });
    worker(y, { forge: lieLast, audits: false });
    await until('the lie is caught', async () => {
      const [row] = await task(id);
      return row.audit?.passed === false;
    });
    const [row] = await task(id);
    expect(row.state).not.toBe('agreed');
    expect(row.audit?.reason).toMatch(/replayed differs from the votes/);
    expect(row.audit?.refuted).toEqual([]);
    expect(await failuresOf(x.address)).toBe(1);
    expect(await failuresOf(y.address)).toBe(1);
    expect(await failuresOf(honest.address)).toBe(0);
  });

  it("takes back a struck worker's audit jobs for other tasks, but not its own dispute's jobs", async () => {
    await start();
    const id = (await coordinator.store.addTask(tinySpec(650)))!;
    const struck = accounts(1)[0].address;
    await db.query('INSERT INTO auditors (worker, seen_at) VALUES ($1, $2)', [struck, Date.now()]);
    const jobs = new AuditJobs(db);
    const span = { fromStep: 0, toStep: 2, validate: false, expected: { stateHash: `0x${'01'.repeat(32)}` } };
    await jobs.create(db, id, [span], 'audit', []);
    const [drawn] = (await jobs.ofTasks([id])).get(id)!;
    expect(drawn).toMatchObject({ worker: struck, state: 'assigned' });
    await jobs.assign(db, drawn, span, 'steps', struck, span.expected);
    await jobs.withdrawFrom(db, struck);
    const after = (await jobs.ofTasks([id])).get(id)!;
    const by = (purpose: JobRow['purpose']) => after.find((j) => j.purpose === purpose);
    expect(by('audit')).toMatchObject({ state: 'open', worker: null, excluded: [struck] });
    expect(by('dispute')).toMatchObject({ state: 'assigned', worker: struck });
  });

  /** Twelve steps in two intervals of six: room for a bisection to find a step inside one. */
  const longerSpec = (seed: number) =>
    TaskSpecSchema.parse({ ...tinySpec(seed, { steps: 12 }), checkpointEvery: 6 });

  it('bisects a dispute to the step consistent liars planted: the referee recomputes that one step, the voters fail', async () => {
    await start();
    const [x, y, honest] = accounts(3);
    const spec = longerSpec(630);
    const data = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const id = (await coordinator.store.addTask(spec))!;
    const planted = {
      forge: () => plantedResult(spec, data, 9),
      forgeAudit: (_: unknown, job: Parameters<typeof plantedReplay>[0]) =>
        plantedReplay(job, data, 9).answer,
    };
    worker(honest, { leases: false });
    await auditorAvailable();
    worker(x, planted);
    worker(y, planted);
    await until('the lie is caught', async () => (await task(id))[0].audit?.passed === false);
    const [row] = await task(id);
    expect(row.audit?.bisections).toEqual([
      { span: [6, 12], step: 9, auditor: honest.address, upheld: 'auditor' },
    ]);
    expect(row.audit?.reason).toMatch(/bisected to step 9/);
    // One step for the verdict, then the whole task for the true digest (which the slasher needs).
    expect(row.audit?.stepsRecomputed).toBe(1 + 12);
    expect(await failuresOf(x.address)).toBeGreaterThanOrEqual(1);
    expect(await failuresOf(y.address)).toBeGreaterThanOrEqual(1);
    expect(await failuresOf(honest.address)).toBe(0);
  });

  it("bisects a lying auditor's dispute to its planted step: the auditor is struck, the honest votes pass", async () => {
    await start();
    const [a, b, liar] = accounts(3);
    const spec = longerSpec(640);
    const data = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const id = (await coordinator.store.addTask(spec))!;
    worker(liar, { leases: false, forgeAudit: (_, job) => plantedReplay(job, data, 3).answer });
    await auditorAvailable();
    worker(a);
    worker(b);
    await until('task agreed', async () => (await task(id))[0].state === 'agreed');
    const [row] = await task(id);
    expect(row.audit?.passed).toBe(true);
    expect(row.audit?.bisections).toEqual([
      { span: [0, 6], step: 3, auditor: liar.address, upheld: 'voters' },
    ]);
    expect(row.audit?.refuted).toContain(liar.address);
    expect(await failuresOf(liar.address)).toBe(1);
    expect(await failuresOf(a.address)).toBe(0);
    expect(await failuresOf(b.address)).toBe(0);
  });
});
