/**
 * Sponsors' searches end to end below the app, on a real anvil: the funds loop starts a search once its
 * sponsor opened and funded it on chain (and not when someone else opened its id, or at other terms),
 * headless workers train its tasks, the settler pays them from that search's pool only, and a close on
 * chain pauses it with a lease cut-off before the chain stops settling it.
 */
import { type Hex, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { anvilAccount } from '../chain/accounts.ts';
import { connectChain, readConfig, readSettledEvents, type SigningConnection } from '../chain/client.ts';
import { closeSearch, openSearch, searchOf } from '../chain/searches.ts';
import { cambrianDomain } from '../protocol/eip712.ts';
import { type Db, openDb } from './db.ts';
import { syncFunds } from './funds.ts';
import { insertSearch, type SearchRow, searchRow } from './searches.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { Settler } from './settler.ts';
import { startTestChain, type TestChain, tinySpec, trainWithFreshWorkers } from './testing.ts';

const REWARD = 3n * 10n ** 14n;
let chain: TestChain;
let db: Db;
let coordinator: Coordinator;
let alice: SigningConnection;
let bob: SigningConnection;

beforeAll(async () => {
  chain = await startTestChain();
  db = await openDb({ url: 'memory://' });
  // No settler in the process: the test drives the funds loop and the settler itself.
  coordinator = await startCoordinator({
    db,
    domain: cambrianDomain(chain.settings.chainId, chain.settings.settlement),
    queue: { stateWaitMs: 0 },
    log: () => {},
  });
  alice = await connectChain(chain.settings.rpcUrl, anvilAccount(8));
  bob = await connectChain(chain.settings.rpcUrl, anvilAccount(9));
});

afterAll(async () => {
  await coordinator?.close();
  await db?.close();
  await chain?.stop();
});

async function postSearch(name: string, sponsor: SigningConnection, tasks: number): Promise<Hex> {
  const id = keccak256(toHex(`${name} ${Math.random()}`));
  await insertSearch(db, {
    searchId: id,
    sponsor: sponsor.wallet.account.address,
    manifest: { name },
    manifestHash: keccak256(toHex(name)),
    name,
    datasetSha256: `0x${'00'.repeat(32)}`,
    state: 'funding',
    rewardWei: REWARD,
    budgetTasks: tasks,
    maxSpendWei: REWARD * BigInt(tasks),
  });
  for (let i = 0; i < tasks; i++)
    await coordinator.store.addTask(tinySpec(900 + i + tasks * 10), null, db, id);
  return id;
}

const sync = () =>
  syncFunds(db, alice.publicClient, chain.settings.settlement, { maxLeaseMs: coordinator.store.maxLeaseMs });
const row = async (id: Hex) => (await searchRow(db, id)) as SearchRow;

it('starts a search once its sponsor funds it on chain, pays its tasks from its own pool, pauses when it closes', async () => {
  const a = await postSearch('a', alice, 2);
  const squatted = await postSearch('squatted', alice, 1);
  const underpaid = await postSearch('underpaid', bob, 1);
  await sync();
  expect((await row(a)).state).toBe('funding');
  expect((await row(a)).error).toBe('not opened on chain yet');

  await openSearch(alice, chain.settings.settlement, a, { rewardPerTask: REWARD, fund: 10n * REWARD });
  // Bob opens alice's search id first (a squatter), and his own at half the reward the row says.
  await openSearch(bob, chain.settings.settlement, squatted, { rewardPerTask: REWARD, fund: 10n * REWARD });
  await openSearch(bob, chain.settings.settlement, underpaid, {
    rewardPerTask: REWARD / 2n,
    fund: 10n * REWARD,
  });
  await sync();
  expect(await row(a)).toMatchObject({ state: 'running', error: null, pool_wei: (10n * REWARD).toString() });
  expect((await row(squatted)).state).toBe('funding');
  expect((await row(squatted)).error).toMatch(/opened on chain by 0x[0-9a-fA-F]+, not its sponsor/);
  expect((await row(underpaid)).error).toBe(`its reward on chain is ${REWARD / 2n} wei, not ${REWARD}`);
  coordinator.store.searchesChanged();

  // Two workers train search a's two tasks (the other searches hand out nothing).
  await trainWithFreshWorkers(coordinator.url, 2, 2);
  await coordinator.tick(); // the audits
  const agreed = await db.query<{ search_id: Hex }>(`SELECT search_id FROM tasks WHERE state = 'agreed'`);
  expect(agreed.map((t) => t.search_id)).toEqual([a, a]);

  const operatorPool = (await readConfig(alice.publicClient, chain.settings.settlement)).pool;
  expect(await new Settler(db, chain.settings).tick()).toBe(2);
  expect((await searchOf(alice.publicClient, chain.settings.settlement, a))?.pool).toBe(8n * REWARD);
  expect((await readConfig(alice.publicClient, chain.settings.settlement)).pool).toBe(operatorPool);
  const events = await readSettledEvents(alice.publicClient, chain.settings.settlement);
  expect(events.map((e) => e.searchId)).toEqual([a, a]);

  await closeSearch(alice, chain.settings.settlement, a);
  await sync();
  const closed = await row(a);
  const { settleUntil } = (await searchOf(alice.publicClient, chain.settings.settlement, a))!;
  expect(closed).toMatchObject({ state: 'paused', chain_state: 'closed' });
  expect(closed.lease_until).toBeLessThan(Number(settleUntil) * 1000 - coordinator.store.maxLeaseMs);
});
