/**
 * The coordinator process killed with SIGKILL mid-run and restarted on the same database: no accepted
 * result is lost and no task is settled twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, expect, it } from 'vitest';
import { connectChain, owed, readSettledEvents } from '../chain/client.ts';
import { loadDataset } from '../data/node.ts';
import { train } from '../engine/train.ts';
import { signSessionGrant } from '../protocol/eip712.ts';
import { CoordinatorClient, runWorkerLoop } from './client.ts';
import { openDb } from './db.ts';
import { freePort, REWARD_PER_TASK, startTestChain, type TestChain } from './testing.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BUDGET = 6;

let chain: TestChain | undefined;
let child: ChildProcess | undefined;
afterAll(async () => {
  child?.kill('SIGKILL');
  await chain?.stop();
});

function startCoordinatorProcess(args: string[]): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['bin/cambrian.mjs', 'coordinator', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (process.env.DEBUG_CRASH) process.stderr.write(`[child ${Date.now() % 100000}] ${d}`);
      if (out.includes('listening on')) resolve(proc);
    });
    proc.once('exit', (code) => reject(new Error(`coordinator exited (${code}): ${out}`)));
  });
}

it('survives SIGKILL: no accepted result lost, no task settled twice', async () => {
  chain = await startTestChain();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'cambrian-crash-'));
  const args = [
    ...['--port', String(port), '--data-dir', dataDir, '--rpc-url', chain.settings.rpcUrl],
    ...['--settlement', chain.settings.settlement, '--coordinator-key', chain.settings.coordinatorKey],
    ...[
      '--track',
      'blobs',
      '--strategy',
      'random',
      '--budget',
      String(BUDGET),
      '--steps',
      '8',
      '--seed',
      '3',
    ],
    ...['--queue-depth', '4', '--lease-ms', '2000', '--checkpoint-every', '2', '--max-params', '3000'],
  ];
  child = await startCoordinatorProcess(args);
  const url = `http://127.0.0.1:${port}`;

  const accepted: { worker: Hex; taskId: Hex }[] = [];
  const stop = new AbortController();
  const blobs = await loadDataset('blobs');
  const workers = [0, 1, 2].map(async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const client = new CoordinatorClient(url);
    await client.openSession({
      worker: key.address,
      sessionKey: key,
      signGrant: (t) => signSessionGrant(key, t.domain, t.message),
    });
    return runWorkerLoop({
      client,
      stop: stop.signal,
      heartbeatMs: 300,
      idleMs: 100,
      compute: (lease, ctx) => train(lease.spec, blobs, { signal: ctx.signal }),
      onEvent: (e) => {
        if (e.type === 'submitted') accepted.push({ worker: key.address, taskId: e.taskId });
      },
    });
  });

  // Polls the observable state; how long it takes depends on the machine's load, so only the test's
  // timeout bounds it (on a loaded 2-core machine a restart plus six settlements can take minutes).
  const until = async (ok: () => boolean | Promise<boolean>) => {
    while (!(await ok())) await new Promise((r) => setTimeout(r, 50));
  };
  await until(() => accepted.length >= 4);
  if (process.env.DEBUG_CRASH) console.error('kill at', Date.now() % 100000);
  child.kill('SIGKILL');
  await new Promise((r) => child!.once('exit', r));
  const acceptedBeforeKill = accepted.length;
  child = await startCoordinatorProcess(args);

  const settled = async () => {
    const res = await fetch(`${url}/api/v1/search`).catch(() => undefined);
    const body = res?.ok ? ((await res.json()) as { tasks: Record<string, number> }) : undefined;
    if (process.env.DEBUG_CRASH) console.log(JSON.stringify(body?.tasks), accepted.length);
    return (body?.tasks.settled ?? 0) >= BUDGET;
  };
  await until(settled);
  stop.abort();
  await Promise.all(workers);
  child.kill('SIGINT');
  await new Promise((r) => child!.once('exit', r));
  child = undefined;

  const db = await openDb({ dataDir });
  try {
    for (const a of accepted) {
      const rows = await db.query('SELECT 1 FROM votes WHERE worker = $1 AND task_id = $2', [
        a.worker,
        a.taskId,
      ]);
      expect(rows, `vote of ${a.worker} on ${a.taskId}`).toHaveLength(1);
    }
    expect(acceptedBeforeKill).toBeGreaterThanOrEqual(4);
    const tasks = await db.query<{ task_id: Hex; tx_hash: Hex }>(
      `SELECT task_id, tx_hash FROM tasks WHERE state = 'settled'`,
    );
    expect(tasks).toHaveLength(BUDGET);
    const conn = await connectChain(chain.settings.rpcUrl);
    const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
    expect(events).toHaveLength(BUDGET);
    expect(new Set(events.map((e) => e.taskId)).size).toBe(BUDGET);
    for (const t of tasks) expect(events.find((e) => e.taskId === t.task_id)?.txHash).toBe(t.tx_hash);
    const workersPaid = [...new Set(accepted.map((a) => a.worker))];
    const total = (
      await Promise.all(workersPaid.map((w) => owed(conn.publicClient, chain!.settings.settlement, w)))
    ).reduce((x, y) => x + y, 0n);
    expect(total).toBe(BigInt(BUDGET) * REWARD_PER_TASK);
  } finally {
    await db.close();
  }
}, 600_000);
