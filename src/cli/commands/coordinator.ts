import { type Hex, parseEther } from 'viem';
import { openDb } from '../../coordinator/db.ts';
import type { SearchConfig } from '../../coordinator/search.ts';
import { startCoordinator } from '../../coordinator/service.ts';
import { STRATEGIES, type StrategyConfig } from '../../nas/strategy.ts';
import { TRACK_NAMES, type TrackName, trackByName } from '../../nas/tracks.ts';
import { type Command, intOption, parseOptions } from '../command.ts';

/** The default search: aging evolution on the MNIST track (used by `cambrian up` too). */
export function searchConfig(o: {
  strategy?: string;
  track?: string;
  budget?: string;
  steps?: string;
  seed?: string;
  queueDepth?: string;
  maxParams?: string;
}): SearchConfig {
  const kind = o.strategy ?? 'evolution';
  if (!(STRATEGIES as readonly string[]).includes(kind))
    throw new Error(`--strategy must be one of ${STRATEGIES.join(', ')}`);
  const track = o.track ?? 'mnist';
  const known = trackByName(track); // throws naming the known tracks
  const budget = intOption(o.budget, '--budget', 200, 1);
  const steps = intOption(o.steps, '--steps', known.steps, 1);
  const seed = intOption(o.seed, '--seed', 1, 0);
  const strategy: StrategyConfig =
    kind === 'asha'
      ? { kind: 'asha', seed, budget, minSteps: Math.max(1, Math.floor(steps / 9)), maxSteps: steps }
      : kind === 'random'
        ? { kind: 'random', seed, budget, steps }
        : { kind: 'evolution', seed, budget, steps, populationSize: 16, sampleSize: 4 };
  return {
    track: track as TrackName,
    strategy,
    queueDepth: intOption(o.queueDepth, '--queue-depth', 8, 1),
    maxParams: o.maxParams === undefined ? undefined : intOption(o.maxParams, '--max-params', 0, 1),
  };
}

export const command: Command = {
  name: 'coordinator',
  summary: 'run the coordinator service (API, search, leases, settlement)',
  help: `usage: cambrian coordinator --rpc-url URL --settlement ADDR [options]

Serves /api/v1 (OpenAPI at /api/v1/openapi.json, reference at /api/v1/docs), runs the search,
leases tasks to workers, decides agreement and settles agreed tasks on chain.
  --port N               HTTP port (default 8787; 0 picks a free one)
  --host H               bind address (default 127.0.0.1)
  --database-url URL     PostgreSQL (default $DATABASE_URL); without it, embedded PGlite in --data-dir
  --data-dir DIR         PGlite's folder (default .data/pglite)
  --rpc-url URL          chain RPC (default $CAMBRIAN_RPC_URL)
  --settlement ADDR      Settlement contract (default $CAMBRIAN_SETTLEMENT)
  --coordinator-key HEX  key with COORDINATOR_ROLE (default $CAMBRIAN_COORDINATOR_KEY)
  --referee-key HEX      key with REFEREE_ROLE, signs verdicts of refereed tasks (default
                         $CAMBRIAN_REFEREE_KEY; without it refereed tasks cannot settle)
  --strategy evolution|random|asha, --track ${TRACK_NAMES.join('|')}, --budget N, --steps N, --seed S
  --queue-depth N        tasks kept open at once (default 8)
  --max-params N         largest architecture the search proposes (default 250000)
  --no-search            only serve tasks already in the database
  --lease-ms N           lease lifetime without heartbeat (default 60000)
  --min-bond ETH         bond a worker needs on chain before it runs single replicas (default: 10
                         rewards per task, at least 0.01; 0 asks for none, docs/TRUST.md "Bonds")
  --static DIR           serve the built web app from DIR (e.g. dist)`,
  async run(argv) {
    const o = parseOptions(argv, {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'database-url': { type: 'string' },
      'data-dir': { type: 'string', default: '.data/pglite' },
      'rpc-url': { type: 'string' },
      settlement: { type: 'string' },
      'coordinator-key': { type: 'string' },
      'referee-key': { type: 'string' },
      strategy: { type: 'string' },
      track: { type: 'string' },
      budget: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      'queue-depth': { type: 'string' },
      'max-params': { type: 'string' },
      'no-search': { type: 'boolean', default: false },
      'lease-ms': { type: 'string' },
      'min-bond': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      static: { type: 'string' },
    });
    const rpcUrl = o['rpc-url'] ?? process.env.CAMBRIAN_RPC_URL;
    const settlement = (o.settlement ?? process.env.CAMBRIAN_SETTLEMENT) as Hex | undefined;
    const coordinatorKey = (o['coordinator-key'] ?? process.env.CAMBRIAN_COORDINATOR_KEY) as Hex | undefined;
    const refereeKey = (o['referee-key'] ?? process.env.CAMBRIAN_REFEREE_KEY) as Hex | undefined;
    if (!rpcUrl || !settlement || !coordinatorKey) {
      throw new Error('needs --rpc-url, --settlement and --coordinator-key (or their CAMBRIAN_* variables)');
    }
    const chainId = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    })
      .then((r) => r.json() as Promise<{ result: string }>)
      .then((b) => Number(b.result));
    const db = await openDb({ url: o['database-url'] ?? process.env.DATABASE_URL, dataDir: o['data-dir'] });
    const search = o['no-search']
      ? null
      : {
          ...searchConfig({ ...o, queueDepth: o['queue-depth'], maxParams: o['max-params'] }),
          checkpointEvery: o['checkpoint-every']
            ? intOption(o['checkpoint-every'], '--checkpoint-every', 1, 1)
            : undefined,
        };
    const coordinator = await startCoordinator({
      db,
      chain: { rpcUrl, chainId, settlement, coordinatorKey, refereeKey },
      search,
      port: intOption(o.port, '--port', 8787, 0),
      host: o.host,
      staticDir: o.static,
      queue: o['lease-ms'] ? { leaseMs: intOption(o['lease-ms'], '--lease-ms', 60_000, 100) } : undefined,
      minBond: o['min-bond'] === undefined ? undefined : ethOption(o['min-bond'], '--min-bond'),
    });
    console.log(`coordinator listening on ${coordinator.url} (API ${coordinator.url}/api/v1, db ${db.kind})`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await coordinator.close();
    await db.close();
    return 0;
  },
};

/** An amount of ETH given on the command line, in wei. */
function ethOption(text: string, name: string): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(text.trim()))
    throw new Error(`${name} must be an amount of ETH, such as 0.01`);
  return parseEther(text.trim());
}
