/**
 * Helpers for the coordinator's tests and benchmark: a real anvil with a deployed, funded
 * Settlement contract, a switchable RPC proxy (to take the endpoint down and bring it back),
 * tiny task specs on the generated dataset, and a database per test (PGlite in memory, or a fresh
 * database on the PostgreSQL server named by TEST_DATABASE_URL).
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { type Hex, toHex } from 'viem';
import { anvilAccount } from '../chain/accounts.ts';
import { type AnvilNode, startAnvil } from '../chain/anvil.ts';
import { deployEmbedded } from '../chain/embedded.ts';
import { DATASETS } from '../data/catalog.ts';
import {
  buildTaskResult,
  type Checkpoint,
  metricsOf,
  type TaskResult,
  type TaskSpec,
  TaskSpecSchema,
} from '../protocol/index.ts';
import { type Db, openDb } from './db.ts';
import type { ChainSettings } from './settler.ts';

export const REWARD_PER_TASK = 10n ** 15n;

/** How long a test may wait for an event: only a hang should reach it, never a slow machine (vitest.config.ts). */
export const EVENT_WAIT_MS = 240_000;

/** Polls `probe` until it returns something truthy (that value), or throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = EVENT_WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestChain {
  anvil: AnvilNode;
  settings: ChainSettings;
  stop(): Promise<void>;
}

export function privateKeyOf(index: number): Hex {
  return toHex(anvilAccount(index).getHdKey().privateKey!);
}

/** anvil + Settlement as the embedded chain deploys it (admin, coordinator, referee: dev accounts 0, 1, 2; minQuorum 2), funded with 10 ETH. */
export async function startTestChain(rpcUrlFor?: (anvil: AnvilNode) => string): Promise<TestChain> {
  const anvil = await startAnvil();
  const embedded = await deployEmbedded(anvil.rpcUrl, {
    rewardPerTask: REWARD_PER_TASK,
    minQuorum: 2,
    fund: 10n ** 19n,
  });
  return {
    anvil,
    settings: {
      rpcUrl: rpcUrlFor?.(anvil) ?? anvil.rpcUrl,
      chainId: anvil.chainId,
      settlement: embedded.deployment.address,
      coordinatorKey: embedded.coordinatorKey,
      refereeKey: embedded.refereeKey,
    },
    stop: () => anvil.stop(),
  };
}

/** An HTTP forwarder to `target` that can be switched off (connections refused with 503). */
export async function startSwitchableProxy(
  target: string,
): Promise<{ url: string; up: boolean; close(): Promise<void> }> {
  const to = new URL(target);
  const state = { up: true };
  const server: Server = createServer((req, res) => {
    if (!state.up) {
      res.writeHead(503).end('down');
      return;
    }
    const fwd = httpRequest(
      { host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.writeHead(502).end());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get up() {
      return state.up;
    },
    set up(v: boolean) {
      state.up = v;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A tiny task on the generated dataset: trains in milliseconds on the CPU. */
export function tinySpec(seed: number, overrides: { steps?: number; units?: number } = {}): TaskSpec {
  return TaskSpecSchema.parse({
    v: 1,
    dataset: { name: 'blobs', sha256: DATASETS.blobs.sha256 },
    split: { seed: 1, validation: 64 },
    model: { inputs: 64, classes: 4, hidden: [{ units: overrides.units ?? 16, activation: 'relu' }] },
    training: {
      optimizer: 'sgd',
      batch: 16,
      steps: overrides.steps ?? 8,
      seed,
      learningRateQ16: 4096,
      momentumQ16: 32768,
      weightDecayQ24: 0,
    },
    checkpointEvery: 2,
  });
}

/** The PostgreSQL server for tests, or undefined (with the reason to print) when none is configured. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
export const POSTGRES_SKIP_REASON =
  'PostgreSQL tests skipped: set TEST_DATABASE_URL=postgres://… to run them';

/** A fresh, empty database on the test server; dropped by the returned cleanup. */
export async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error(POSTGRES_SKIP_REASON);
  const name = `cambrian_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** The databases every queue test runs on: PGlite always, PostgreSQL when configured. */
export const DATABASES: { name: string; open(): Promise<{ db: Db; cleanup(): Promise<void> }> }[] = [
  {
    name: 'pglite',
    async open() {
      const db = await openDb({ url: 'memory://' });
      return { db, cleanup: () => db.close() };
    },
  },
  ...(TEST_DATABASE_URL
    ? [
        {
          name: 'postgres',
          async open() {
            const fresh = await freshPostgres();
            const db = await openDb({ url: fresh.url });
            return {
              db,
              async cleanup() {
                await db.close();
                await fresh.drop();
              },
            };
          },
        },
      ]
    : []),
];

/** A TCP port that was free a moment ago on loopback (for child processes that need a fixed port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A result whose trace departs from the honest one at checkpoint `from` (a worker that computed wrong). */
export function divergentResult(honest: TaskResult, from: number): TaskResult {
  const checkpoints: Checkpoint[] = honest.checkpoints.map((c, i) =>
    i < from ? c : { step: c.step, stateHash: `0x${(i + 7).toString(16).padStart(64, 'e')}` },
  );
  return buildTaskResult({ ...metricsOf(honest), checkpoints });
}

/** `count` headless CPU workers with fresh keys, each taking up to `maxTasks` tasks, run to the end. */
export async function trainWithFreshWorkers(
  coordinator: string,
  count: number,
  maxTasks: number,
): Promise<void> {
  // Imported on use: most tests that load testing.ts run no worker.
  const { runHeadlessWorker } = await import('../worker/headless/worker.ts');
  const { generatePrivateKey, privateKeyToAccount } = await import('viem/accounts');
  await Promise.all(
    Array.from({ length: count }, () =>
      runHeadlessWorker({
        coordinator,
        account: privateKeyToAccount(generatePrivateKey()),
        backend: 'cpu',
        maxTasks,
        idleMs: 50,
      }),
    ),
  );
}
