/**
 * The leaderboard from the chain alone equals the coordinator's: tasks run by real headless workers,
 * settled by the real settler on anvil, then rebuilt by `cambrian leaderboard --from-chain` from calldata
 * and events only, and compared with the coordinator's view of its database.
 */
import { spawnSync } from 'node:child_process';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, expect, it } from 'vitest';
import { type Db, openDb } from '../coordinator/db.ts';
import { type Coordinator, startCoordinator } from '../coordinator/service.ts';
import { Settler } from '../coordinator/settler.ts';
import { startTestChain, type TestChain, tinySpec } from '../coordinator/testing.ts';
import { Views } from '../coordinator/views.ts';
import { randomSpecV2 } from '../engine/random-spec.ts';
import { cambrianDomain } from '../protocol/eip712.ts';
import { runHeadlessWorker } from '../worker/headless/worker.ts';
import { ROOT } from './build.ts';
import { connectChain } from './client.ts';
import { type ChainLeaderboardEntry, chainLeaderboard } from './leaderboard.ts';

let chain: TestChain | undefined;
let db: Db | undefined;
let coordinator: Coordinator | undefined;
afterAll(async () => {
  await coordinator?.close();
  await db?.close();
  await chain?.stop();
});

it('rebuilds the coordinator leaderboard from the chain alone', { timeout: 240_000 }, async () => {
  chain = await startTestChain();
  db = await openDb({ url: 'memory://' });
  coordinator = await startCoordinator({
    db,
    domain: cambrianDomain(chain.settings.chainId, chain.settings.settlement),
    // The workers stop after their tasks: the audit recomputes from step 0 at once.
    queue: { stateWaitMs: 0 },
    log: () => {},
  });
  // A conv (v2) task beside the MLPs: its spec too must come back from calldata.
  await coordinator.store.addTask(randomSpecV2(3, { small: true }));
  for (const [seed, units] of [
    [800, 8],
    [801, 16],
    [802, 24],
  ]) {
    await coordinator.store.addTask(tinySpec(seed, { units }));
  }
  await Promise.all(
    [0, 1].map(() =>
      runHeadlessWorker({
        coordinator: coordinator!.url,
        account: privateKeyToAccount(generatePrivateKey()),
        backend: 'cpu',
        maxTasks: 4,
        idleMs: 50,
      }),
    ),
  );
  await coordinator.tick(); // the audits
  expect(await new Settler(db, chain.settings).tick()).toBe(4);

  const fromDb = await new Views(db, () => null).leaderboard();
  const conn = await connectChain(chain.settings.rpcUrl);
  const fromChain = await chainLeaderboard(conn.publicClient, chain.settings.settlement);
  expect(fromChain.unverified).toEqual([]);
  const comparable = (
    e: Omit<ChainLeaderboardEntry, 'txHash' | 'blockNumber' | 'seq'> & { txHash: string | null },
  ) => ({
    rank: e.rank,
    taskId: e.taskId,
    spec: e.spec,
    params: e.params,
    flops: e.flops,
    valCorrect: e.valCorrect,
    valCount: e.valCount,
    valLoss: e.valLoss,
    weightsHash: e.weightsHash,
    digest: e.digest,
    txHash: e.txHash,
  });
  expect(fromDb).toHaveLength(4);
  expect(fromChain.entries.map(comparable)).toEqual(fromDb.map(comparable));

  // The command prints the same board as JSON, with nothing but the RPC endpoint and the address.
  const cli = spawnSync(
    process.execPath,
    [
      'bin/cambrian.mjs',
      'leaderboard',
      '--from-chain',
      '--rpc',
      chain.settings.rpcUrl,
      '--settlement',
      chain.settings.settlement,
      '--json',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  expect(cli.status, cli.stderr).toBe(0);
  const printed = JSON.parse(cli.stdout) as { entries: { taskId: string; digest: string; rank: number }[] };
  expect(printed.entries.map((e) => [e.rank, e.taskId, e.digest])).toEqual(
    fromDb.map((e) => [e.rank, e.taskId, e.digest]),
  );
});
