/**
 * The coordinator process: HTTP API, expiry sweep, search, referee and settlement loops over one
 * database. Several processes may share a PostgreSQL database; singleton loops take leased locks.
 *
 *   const c = await startCoordinator({ db, chain, search, port: 8787 });
 *   … c.url …; await c.close();
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import type { Hex } from 'viem';
import { readConfig } from '../chain/client.ts';
import { buildDataset, DATASET_DIR } from '../data/build.ts';
import { DATASETS, type DatasetName } from '../data/catalog.ts';
import { type CambrianDomain, cambrianDomain } from '../protocol/eip712.ts';
import { enableWasmKeccak } from '../protocol/keccak.ts';
import { createApi, type DatasetInfo } from './api.ts';
import { auditPending } from './audit.ts';
import { type AuditJobOptions, AuditJobs, DEFAULT_AUDIT_JOBS } from './audit-jobs.ts';
import { BondBook, defaultMinBond, Slasher } from './bonds.ts';
import { expireDatasets } from './datasets.ts';
import type { Db } from './db.ts';
import { syncFunds } from './funds.ts';
import { LOCK_TTL_MS, tryLock } from './locks.ts';
import type { RateLimits } from './rate-limits.ts';
import { RecomputePool } from './recompute-pool.ts';
import { RecoveryPool } from './recovery-pool.ts';
import { refereePending } from './referee.ts';
import { type SearchConfig, SearchDriver } from './search.ts';
import { type ChainSettings, Settler } from './settler.ts';
import { SponsoredRunner } from './sponsored.ts';
import { StateExchange } from './states.ts';
import { DEFAULT_QUEUE, type QueueOptions, Store } from './store.ts';
import { Views } from './views.ts';

export interface CoordinatorOptions {
  db: Db;
  /** Settlement chain; without it, agreed tasks wait unsettled and the domain uses `domain`. */
  chain?: ChainSettings;
  /**
   * With a chain: the bond (wei) a worker needs on chain before it may run single replicas
   * (default `defaultMinBond` of the contract's reward per task: 10 rewards, at least 0.01 ETH); 0
   * asks for none. Wrong votes of bonded workers are slashed when the
   * chain settings carry the referee key.
   */
  minBond?: bigint;
  /** EIP-712 domain when there is no chain (tests, benchmarks). */
  domain?: CambrianDomain;
  queue?: Partial<QueueOptions>;
  /** The search to run; null or absent: tasks only come from `store.addTask`. */
  search?: SearchConfig | null;
  port?: number;
  host?: string;
  /** The built web app (vite build output) to serve at /. */
  staticDir?: string;
  /** Loop periods. */
  sweepMs?: number;
  settleMs?: number;
  searchMs?: number;
  settleBatchSize?: number;
  /** Request rate limits (default DEFAULT_RATE_LIMITS; false: none). */
  rateLimits?: RateLimits | false;
  /** Shortest session grant accepted, seconds (default MIN_GRANT_LIFETIME_S). */
  minGrantSeconds?: number;
  /** Threads that recover signatures (default: cores − 1, at most 4; 0 = on the event loop). */
  recoveryThreads?: number;
  /** How audit jobs are drawn and how long a drawn worker has (absent: DEFAULT_AUDIT_JOBS). */
  auditJobs?: Partial<AuditJobOptions>;
  /** Threads that run audits and the referee (default: cores − 1, at most 2; 0 = on the event loop). */
  recomputeThreads?: number;
  log?: (msg: string) => void;
}

export interface Coordinator {
  url: string;
  port: number;
  store: Store;
  settler?: Settler;
  search?: SearchDriver;
  domain: CambrianDomain;
  /** Runs every loop once, now (tests use this instead of waiting for timers). */
  tick(): Promise<void>;
  close(): Promise<void>;
}

/** Runs `fn` every `ms`, one run at a time; errors are logged and retried on the next round. */
function loop(ms: number, name: string, fn: () => Promise<unknown>, log: (msg: string) => void) {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const run = async () => {
    try {
      await fn();
    } catch (err) {
      log(`${name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)} (will retry)`);
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().then(schedule);
    }, ms);
  };
  schedule();
  return {
    /** Runs now, after any run in progress. */
    now: () => (running = running.then(run)),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export function datasetInfos(): DatasetInfo[] {
  return (Object.keys(DATASETS) as DatasetName[]).map((name) => ({
    name,
    sha256: DATASETS[name].sha256,
    description: DATASETS[name].description,
    url: `/api/v1/datasets/${DATASETS[name].sha256}`,
  }));
}

async function datasetBytes(sha256: Hex): Promise<Uint8Array | undefined> {
  const name = (Object.keys(DATASETS) as DatasetName[]).find((n) => DATASETS[n].sha256 === sha256);
  if (!name) return undefined;
  const path = join(DATASET_DIR, DATASETS[name].file);
  if (!existsSync(path)) await buildDataset(name);
  return new Uint8Array(await readFile(path));
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<Coordinator> {
  await enableWasmKeccak(); // every accepted result is hashed several times
  const log = opts.log ?? ((msg: string) => console.log(`[coordinator] ${msg}`));
  const holder = randomUUID();
  const settler = opts.chain
    ? new Settler(opts.db, opts.chain, { batchSize: opts.settleBatchSize, log })
    : undefined;
  let quorum = opts.queue?.quorum ?? DEFAULT_QUEUE.quorum;
  let minBond = opts.minBond ?? 0n;
  if (settler && opts.chain) {
    // The contract's minQuorum is the one that counts on chain; the default bond follows its reward.
    const config = await readConfig(settler.publicClient, opts.chain.settlement);
    quorum = config.minQuorum;
    minBond = opts.minBond ?? defaultMinBond(config.rewardPerTask);
  }
  const queue: QueueOptions = { ...DEFAULT_QUEUE, ...opts.queue, quorum };
  queue.initialReplicas = Math.max(queue.initialReplicas, quorum);
  queue.maxReplicas = Math.max(queue.maxReplicas, queue.initialReplicas);
  const store = new Store(opts.db, queue);
  const bonds =
    opts.chain && settler && minBond > 0n
      ? new BondBook(settler.publicClient, opts.chain.settlement, minBond, log)
      : undefined;
  if (bonds) store.bondCheck = bonds.bondedAmong;
  const slasher =
    opts.chain?.refereeKey !== undefined
      ? new Slasher(opts.db, { ...opts.chain, refereeKey: opts.chain.refereeKey }, bonds, log)
      : undefined;
  // PGlite belongs to one process, so any lock found at start is a dead predecessor's: take over now.
  if (opts.db.kind === 'pglite') await opts.db.query('DELETE FROM locks');
  const search = opts.search ? new SearchDriver(opts.db, store, opts.search, holder) : undefined;
  const domain =
    opts.domain ??
    (opts.chain ? cambrianDomain(opts.chain.chainId, opts.chain.settlement) : undefined) ??
    (() => {
      throw new Error('startCoordinator needs a chain or an EIP-712 domain');
    })();
  const sponsored = new SponsoredRunner(opts.db, store, holder, log);
  const views = new Views(opts.db, (searchId) =>
    searchId ? (sponsored.driver(searchId)?.summary() ?? null) : (search?.summary() ?? null),
  );
  const states = new StateExchange(opts.db);
  const auditJobs = new AuditJobs(opts.db, { ...DEFAULT_AUDIT_JOBS, ...opts.auditJobs });
  const recovery = new RecoveryPool(opts.recoveryThreads);
  const recompute = new RecomputePool(opts.recomputeThreads, log);
  const api = createApi({
    recover: (hash, sig) => recovery.recover(hash, sig),
    store,
    states,
    auditJobs,
    views,
    domain,
    rpcUrl: opts.chain?.rpcUrl,
    datasets: datasetInfos(),
    datasetBytes,
    rateLimits: opts.rateLimits,
    minGrantSeconds: opts.minGrantSeconds,
    minBond: bonds?.minBond,
  });

  const root = new Hono();
  root.route('/api/v1', api);
  // The web app fetches datasets from /datasets/<file> (public/ in development, dist/ once built).
  root.use('/datasets/*', serveStatic({ root: relative(process.cwd(), join(DATASET_DIR, '..')) }));
  if (opts.staticDir && existsSync(opts.staticDir)) {
    const rootDir = relative(process.cwd(), opts.staticDir) || '.';
    root.use('/*', serveStatic({ root: rootDir }));
    root.get('*', serveStatic({ root: rootDir, path: 'index.html' }));
  }

  const server = serve({ fetch: root.fetch, port: opts.port ?? 0, hostname: opts.host ?? '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    if (server.listening) resolve();
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  const loops = [
    loop(
      opts.sweepMs ?? 1000,
      'lease sweep',
      async () => {
        await store.expireLeases();
        await store.evictExpiredSessions();
        await expireDatasets(opts.db);
      },
      log,
    ),
    loop(
      opts.searchMs ?? 1000,
      'search',
      async () => {
        await search?.tick();
        if ((await sponsored.tick()) > 0) store.searchesChanged();
      },
      log,
    ),
    loop(
      opts.settleMs ?? 2000,
      'referee',
      () => refereePending(opts.db, store, log, { states, recompute }),
      log,
    ),
    loop(
      opts.settleMs ?? 2000,
      'audit',
      () =>
        auditPending(opts.db, store, {
          states,
          jobs: auditJobs,
          stateWaitMs: queue.stateWaitMs ?? 0,
          log,
          recompute,
          parallel: 8,
        }),
      log,
    ),
    loop(
      opts.settleMs ?? 2000,
      'settlement',
      async () => {
        if (!settler) return;
        const renew = () => tryLock(opts.db, 'settler', holder, LOCK_TTL_MS);
        if (!(await renew())) return;
        await settler.tick(renew);
        // The same loop as settling: one sender of the coordinator key's transactions at a time.
        if (slasher && (await renew())) await slasher.tick();
      },
      log,
    ),
    loop(
      opts.settleMs ?? 2000,
      'funds',
      async () => {
        if (!settler || !opts.chain) return;
        const read = await syncFunds(opts.db, settler.publicClient, opts.chain.settlement, {
          maxLeaseMs: store.maxLeaseMs,
          log,
        });
        if (read > 0) store.searchesChanged(); // pools and states the snapshot must see
      },
      log,
    ),
  ];
  await loops[1].now(); // fill the queue before the first worker asks

  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    store,
    settler,
    search,
    domain,
    async tick() {
      for (const l of loops) await l.now();
    },
    async close() {
      await Promise.all(loops.map((l) => l.stop()));
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await recovery.close();
      await recompute.close();
    },
  };
}
