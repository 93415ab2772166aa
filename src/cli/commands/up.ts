import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from 'viem';
import { anvilAccount, EMBEDDED_ROLES } from '../../chain/accounts.ts';

const ROLE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(EMBEDDED_ROLES).map(([role, index]) => [index, ` (${role})`]),
);

import { startAnvil } from '../../chain/anvil.ts';
import { ROOT } from '../../chain/build.ts';
import { deployEmbedded } from '../../chain/embedded.ts';
import { openDb } from '../../coordinator/db.ts';
import { startCoordinator } from '../../coordinator/service.ts';
import { type Command, intOption, parseOptions } from '../command.ts';
import { searchConfig } from './coordinator.ts';

const REWARD_PER_TASK = 10n ** 15n; // 0.001 ETH
const POOL = 100n * 10n ** 18n;

/** Runs `npx vite build` when dist/ is missing, so `npm start` works from a fresh clone. */
async function ensureAppBuilt(dist: string, log: (m: string) => void): Promise<void> {
  if (existsSync(join(dist, 'index.html'))) return;
  log('building the web app (vite build)…');
  const child = spawn(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`vite build failed (exit ${code})`);
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string): void {
  let rest = '';
  stream.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) process.stderr.write(`${prefix} ${line}\n`);
  });
}

export const command: Command = {
  name: 'up',
  summary: 'the whole network on this machine: chain, contract, coordinator, web app, workers',
  help: `usage: cambrian up [--workers N] [--json] [options]   (npm start)

Starts anvil, deploys and funds the Settlement contract, runs the coordinator on PGlite with the
default search (aging evolution on MNIST), serves the built web app (building it if dist/ is
missing) and N headless workers. Prints the URLs and the dev accounts. Ctrl-C stops everything.
  --workers N            headless workers to start (default 2, so the search runs before any tab joins)
  --backend auto|webgpu|cpu   the workers' backend (default auto: WebGPU on a hardware GPU, else CPU)
  --port N               app + API port (default 8787)
  --chain-port N         anvil's port (default 8545)
  --data-dir DIR         state of this run, wiped at start: the chain is new each time (default .data/up)
  --track mnist|mnist-cnn|blobs   the search's track (MLPs or conv nets on MNIST; the generated set)
  --strategy, --budget, --steps, --seed   the search (see cambrian coordinator --help)
  --json                 print one JSON line {app, api, rpcUrl, chainId, settlement} once everything answers`,
  async run(argv) {
    const o = parseOptions(argv, {
      workers: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      port: { type: 'string' },
      'chain-port': { type: 'string' },
      'data-dir': { type: 'string', default: '.data/up' },
      strategy: { type: 'string' },
      track: { type: 'string' },
      budget: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const log = (m: string) => (o.json ? process.stderr.write(`${m}\n`) : console.log(m));
    const workers = intOption(o.workers, '--workers', 2, 0);
    const dataDir = o['data-dir'];
    rmSync(dataDir, { recursive: true, force: true });

    const children: ChildProcess[] = [];
    const cleanups: (() => Promise<unknown>)[] = [];
    const shutdown = async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
      await Promise.all(
        children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
      );
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    };
    try {
      // A block every second, as on a real chain: block timestamps keep up with the clock, so grant
      // expiry and the epochs of claims are judged at the time they happen (no stale latest block).
      const anvil = await startAnvil({
        port: intOption(o['chain-port'], '--chain-port', 8545, 0),
        args: ['--block-time', '1'],
      });
      cleanups.push(() => anvil.stop());
      const embedded = await deployEmbedded(anvil.rpcUrl, {
        rewardPerTask: REWARD_PER_TASK,
        minQuorum: 2,
        fund: POOL,
      });
      const { deployment } = embedded;
      log(`chain ${anvil.chainId} at ${anvil.rpcUrl}; Settlement ${deployment.address} funded with 100 ETH`);

      const dist = join(ROOT, 'dist');
      await ensureAppBuilt(dist, log);
      const db = await openDb({ dataDir: join(dataDir, 'pglite') });
      cleanups.push(() => db.close());
      const coordinator = await startCoordinator({
        db,
        chain: {
          rpcUrl: anvil.rpcUrl,
          chainId: anvil.chainId,
          settlement: deployment.address,
          coordinatorKey: embedded.coordinatorKey,
          refereeKey: embedded.refereeKey,
        },
        search: searchConfig(o),
        port: intOption(o.port, '--port', 8787, 0),
        staticDir: dist,
        log: (m) => log(`[coordinator] ${m}`),
      });
      cleanups.push(() => coordinator.close());

      for (let i = 0; i < workers; i++) {
        const child = spawn(
          process.execPath,
          [
            join(ROOT, 'bin', 'cambrian.mjs'),
            'worker',
            '--coordinator',
            coordinator.url,
            '--key-file',
            join(dataDir, `worker-${i}.json`),
            '--backend',
            o.backend,
          ],
          { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        prefixLines(child.stdout!, `[worker ${i}]`);
        prefixLines(child.stderr!, `[worker ${i}]`);
        children.push(child);
      }

      const app = `${coordinator.url}/`;
      const api = `${coordinator.url}/api/v1`;
      for (const url of [app, `${api}/info`]) {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      }
      if (o.json) {
        console.log(
          JSON.stringify({
            app,
            api,
            rpcUrl: anvil.rpcUrl,
            chainId: anvil.chainId,
            settlement: deployment.address,
          }),
        );
      } else {
        console.log(`\nCambrian is up.\n  app        ${app}\n  API        ${api} (reference: ${api}/docs)`);
        console.log(
          `  chain      ${anvil.rpcUrl} (chain id ${anvil.chainId})\n  Settlement ${deployment.address}`,
        );
        console.log(
          `  workers    ${workers} headless (${o.backend})\n\nDev accounts (published anvil keys, test use only):`,
        );
        for (let i = 0; i < 10; i++) {
          const a = anvilAccount(i);
          console.log(`  ${i}${ROLE_NAMES[i] ?? ''} ${a.address} ${toHex(a.getHdKey().privateKey!)}`);
        }
        console.log('\nCtrl-C stops everything.');
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      log('stopping…');
      return 0;
    } finally {
      await shutdown();
    }
  },
};
