/**
 * The network end to end on a real anvil: headless workers (the shipped lease loop and engine, CPU
 * backend) lease, train, sign and submit; the coordinator agrees and settles on chain.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex, LocalAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectChain, owed, readSettledEvents, strikes } from '../chain/client.ts';
import { runHeadlessWorker } from '../worker/headless/worker.ts';
import type { WorkerEvent } from './client.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import {
  REWARD_PER_TASK,
  startSwitchableProxy,
  startTestChain,
  type TestChain,
  tinySpec,
  until,
} from './testing.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('coordinator + headless workers + anvil', () => {
  let chain: TestChain;
  let proxy: Awaited<ReturnType<typeof startSwitchableProxy>>;
  let db: Db;
  let coordinator: Coordinator;
  let stop = new AbortController();
  let running: Promise<number>[] = [];
  const log: string[] = [];

  const states = async (taskIds: Hex[]) =>
    db.query<{ task_id: Hex; state: string; tx_hash: Hex | null }>(
      'SELECT task_id, state, tx_hash FROM tasks WHERE task_id = ANY($1::text[])',
      [taskIds],
    );
  const allSettled = (taskIds: Hex[]) => async () =>
    (await states(taskIds)).filter((t) => t.state === 'settled').length === taskIds.length;

  function startWorker(account: LocalAccount, opts: { dishonest?: boolean; events?: WorkerEvent[] } = {}) {
    running.push(
      runHeadlessWorker({
        coordinator: coordinator.url,
        account,
        backend: 'cpu',
        stop: stop.signal,
        heartbeatMs: 300,
        idleMs: 100,
        dishonest: opts.dishonest,
        onEvent: (e) => opts.events?.push(e),
      }),
    );
  }

  beforeAll(async () => {
    chain = await startTestChain();
    proxy = await startSwitchableProxy(chain.anvil.rpcUrl);
    db = await openDb({ url: 'memory://' });
    coordinator = await startCoordinator({
      db,
      chain: { ...chain.settings, rpcUrl: proxy.url },
      // The v1 contract settles a digest only with minQuorum votes: the referee's verdict waits for a
      // second vote for it. Audits wait 2 s for a state upload before recomputing the task.
      queue: { leaseMs: 1500, maxReplicas: 3, refereeQuorum: 2, stateWaitMs: 2000 },
      search: {
        track: 'blobs',
        strategy: { kind: 'random', seed: 5, budget: 4, steps: 8 },
        maxParams: 3000,
        queueDepth: 4,
        checkpointEvery: 2,
      },
      sweepMs: 200,
      settleMs: 300,
      searchMs: 200,
      log: (m) => log.push(m),
    });
  });

  afterAll(async () => {
    stop.abort();
    await Promise.allSettled(running);
    await coordinator?.close();
    await db?.close();
    await proxy?.close();
    await chain?.stop();
  });

  it('three workers run the search; tasks settle on chain, owed rises, the leaderboard matches the events', async () => {
    const workers = [1, 2, 3].map(() => privateKeyToAccount(generatePrivateKey()));
    for (const w of workers) startWorker(w);
    const settledAll = await until('the search budget to settle', async () => {
      const rows = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE state = 'settled'`,
      );
      return rows[0].n >= 4 && rows[0].n;
    });
    expect(settledAll).toBe(4);
    const conn = await connectChain(chain.anvil.rpcUrl);
    const paid = await Promise.all(
      workers.map((w) => owed(conn.publicClient, chain.settings.settlement, w.address)),
    );
    expect(paid.reduce((a, b) => a + b, 0n)).toBe(4n * REWARD_PER_TASK);
    expect(paid.filter((p) => p > 0n).length).toBeGreaterThanOrEqual(2);

    const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
    const board = (await (await fetch(`${coordinator.url}/api/v1/leaderboard`)).json()) as {
      taskId: Hex;
      digest: Hex;
      valCorrect: number;
      valCount: number;
      valLoss: string;
      txHash: Hex;
    }[];
    expect(board).toHaveLength(events.length);
    for (const entry of board) {
      const e = events.find((ev) => ev.taskId === entry.taskId)!;
      expect(e).toBeDefined();
      expect([e.digest, e.valCorrect, e.valCount, e.valLoss.toString(), e.txHash]).toEqual([
        entry.digest,
        entry.valCorrect,
        entry.valCount,
        entry.valLoss,
        entry.txHash,
      ]);
    }
    const search = (await (await fetch(`${coordinator.url}/api/v1/search`)).json()) as {
      tasks: Record<string, number>;
      strategy: { trials: number };
    };
    expect(search.tasks.settled).toBe(4);
    expect(search.strategy.trials).toBe(4);
    const stats = (await (await fetch(`${coordinator.url}/api/v1/workers/${workers[0].address}`)).json()) as {
      votes: number;
    };
    expect(stats.votes).toBeGreaterThan(0);
  });

  it('a dishonest worker gets a strike and no reward; the task settles on the honest digest', async () => {
    const cheat = privateKeyToAccount(generatePrivateKey());
    const cheatEvents: WorkerEvent[] = [];
    startWorker(cheat, { dishonest: true, events: cheatEvents });
    const ids = [] as Hex[];
    for (let seed = 300; seed < 304; seed++) ids.push((await coordinator.store.addTask(tinySpec(seed)))!);
    await until('the new tasks to settle', allSettled(ids));
    const conn = await connectChain(chain.anvil.rpcUrl);
    const cheated = cheatEvents.filter((e) => e.type === 'submitted').length;
    expect(cheated).toBeGreaterThan(0);
    expect(await owed(conn.publicClient, chain.settings.settlement, cheat.address)).toBe(0n);
    expect(await strikes(conn.publicClient, chain.settings.settlement, cheat.address)).toBe(BigInt(cheated));
    const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
    for (const id of ids) {
      const e = events.find((ev) => ev.taskId === id)!;
      expect(e.winners).not.toContain(cheat.address);
      const [vote] = await db.query<{ digest: Hex }>(
        `SELECT digest FROM votes WHERE task_id = $1 AND verdict = 'majority' LIMIT 1`,
        [id],
      );
      expect(e.digest).toBe(vote.digest);
    }
  });

  it('settlement catches up after the RPC endpoint was down', async () => {
    proxy.up = false;
    const ids = [] as Hex[];
    for (let seed = 400; seed < 403; seed++) ids.push((await coordinator.store.addTask(tinySpec(seed)))!);
    await until('agreement while the chain is away', async () =>
      (await states(ids)).every((t) => t.state === 'agreed' || t.state === 'settling'),
    );
    await new Promise((r) => setTimeout(r, 1000)); // several settlement rounds fail meanwhile
    expect((await states(ids)).some((t) => t.state === 'settled')).toBe(false);
    expect(log.some((m) => m.startsWith('settlement:'))).toBe(true);
    proxy.up = true;
    await until('settlement to catch up', allSettled(ids));
    const conn = await connectChain(chain.anvil.rpcUrl);
    const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
    for (const id of ids) expect(events.filter((e) => e.taskId === id)).toHaveLength(1);
  });

  it('a worker killed mid-task has its lease reissued and the task completes', async () => {
    // Stop the in-process workers so the worker process is the one that leases the task.
    stop.abort();
    await Promise.all(running);
    stop = new AbortController();
    running = [];
    const keyFile = join(mkdtempSync(join(tmpdir(), 'cambrian-worker-')), 'key.json');
    // Nothing else open, so the process leases this task (and trains it for a second or so).
    const taskId = (await coordinator.store.addTask(tinySpec(500, { steps: 400, units: 64 })))!;
    const ids = [taskId];
    const child = spawn(
      process.execPath,
      [
        'bin/cambrian.mjs',
        'worker',
        '--coordinator',
        coordinator.url,
        '--key-file',
        keyFile,
        '--backend',
        'cpu',
        '--skip-selftest',
        '--json',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await until('the worker process to lease the task', async () => out.includes('"type":"leased"'));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    for (let i = 0; i < 2; i++) startWorker(privateKeyToAccount(generatePrivateKey()));
    expect(out).not.toContain('"type":"submitted"');
    const worker = (JSON.parse(out.split('\n')[0]) as { address: Hex }).address;
    const [{ task_id: leased }] = await db.query<{ task_id: Hex }>(
      'SELECT task_id FROM leases WHERE worker = $1',
      [worker],
    );
    if (leased !== taskId) ids.push(leased);
    await until('the task to settle without the killed worker', allSettled(ids));
    const leases = await db.query<{ worker: Hex; state: string }>(
      'SELECT worker, state FROM leases WHERE task_id = $1',
      [leased],
    );
    expect(leases.find((l) => l.worker === worker)?.state).toBe('expired');
    expect(leases.filter((l) => l.state === 'submitted').length).toBeGreaterThanOrEqual(2);
  });
});
