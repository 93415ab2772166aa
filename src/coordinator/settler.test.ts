/**
 * Settlement crash windows on a real anvil: the coordinator dies after storing a signed transaction
 * but before broadcasting it, and a restarted settler finishes the batch with that very transaction.
 */
import type { Hex } from 'viem';
import { afterAll, expect, it } from 'vitest';
import { connectChain, readSettledEvents } from '../chain/client.ts';
import { cambrianDomain } from '../protocol/eip712.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { Settler } from './settler.ts';
import { startTestChain, type TestChain, tinySpec, trainWithFreshWorkers } from './testing.ts';

let chain: TestChain | undefined;
let db: Db | undefined;
let coordinator: Coordinator | undefined;
afterAll(async () => {
  await coordinator?.close();
  await db?.close();
  await chain?.stop();
});

it('rebroadcasts a stored signed settlement that never left before a crash', async () => {
  chain = await startTestChain();
  db = await openDb({ url: 'memory://' });
  // A coordinator without a settler (votes signed for the real contract's domain).
  coordinator = await startCoordinator({
    db,
    domain: cambrianDomain(chain.settings.chainId, chain.settings.settlement),
    // The workers stop after their tasks: the audit recomputes from step 0 at once.
    queue: { stateWaitMs: 0 },
    log: () => {},
  });
  const ids = [
    (await coordinator.store.addTask(tinySpec(700)))!,
    (await coordinator.store.addTask(tinySpec(701)))!,
  ];
  await trainWithFreshWorkers(coordinator!.url, 2, 2);
  const states = () =>
    db!.query<{ state: string }>('SELECT state FROM tasks WHERE task_id = ANY($1::text[])', [ids]);
  await coordinator.tick(); // the audit
  expect((await states()).map((t) => t.state)).toEqual(['agreed', 'agreed']);

  // First settler: the process "dies" right after the signed transaction was stored.
  const doomed = new Settler(db, chain.settings);
  doomed.publicClient.sendRawTransaction = () => Promise.reject(new Error('killed before broadcast'));
  await expect(doomed.tick()).rejects.toThrow(/killed before broadcast/);
  const [batch] = await db.query<{ state: string; tx_hash: Hex; raw_tx: Hex }>('SELECT * FROM batches');
  expect(batch.state).toBe('sent');
  expect(batch.raw_tx).toMatch(/^0x/);

  // The restarted settler finds the transaction unknown to the node and sends the same bytes.
  const settled = await new Settler(db, chain.settings).tick();
  expect(settled).toBe(2);
  expect((await states()).map((t) => t.state)).toEqual(['settled', 'settled']);
  const conn = await connectChain(chain.settings.rpcUrl);
  const events = await readSettledEvents(conn.publicClient, chain.settings.settlement);
  expect(events.map((e) => e.txHash)).toEqual([batch.tx_hash, batch.tx_hash]);
  // Another round changes nothing: nothing is sent twice.
  expect(await new Settler(db, chain.settings).tick()).toBe(0);
  expect(await readSettledEvents(conn.publicClient, chain.settings.settlement)).toHaveLength(2);
});

it('settles a task the referee decided with the referee key’s verdict attached', async () => {
  const refChain = await startTestChain();
  const refDb = await openDb({ url: 'memory://' });
  const node = await startCoordinator({
    db: refDb,
    domain: cambrianDomain(refChain.settings.chainId, refChain.settings.settlement),
    // The workers stop after their tasks: the audit recomputes from step 0 at once.
    queue: { stateWaitMs: 0 },
    log: () => {},
  });
  try {
    const id = (await node.store.addTask(tinySpec(710)))!;
    await trainWithFreshWorkers(node.url, 2, 1);
    await node.tick(); // the audit
    await refDb.query(`UPDATE tasks SET decided_by = 'referee' WHERE task_id = $1`, [id]);
    // Without the referee key the verdict cannot be signed: the task fails visibly, nothing is sent.
    const noReferee = { ...refChain.settings, refereeKey: undefined };
    expect(await new Settler(refDb, noReferee).tick()).toBe(0);
    const [failed] = await refDb.query<{ state: string; error: string }>('SELECT state, error FROM tasks');
    expect(failed).toEqual({
      state: 'failed',
      error: 'decided by the referee, but no referee key is configured',
    });
    // The operator configures the key and puts the task back in line.
    await refDb.query(`UPDATE tasks SET state = 'agreed', batch_id = NULL WHERE task_id = $1`, [id]);
    expect(await new Settler(refDb, refChain.settings).tick()).toBe(1);
    const conn = await connectChain(refChain.settings.rpcUrl);
    const [event] = await readSettledEvents(conn.publicClient, refChain.settings.settlement);
    expect(event).toMatchObject({ taskId: id, refereed: true });
    expect(event.winners).toHaveLength(2);
  } finally {
    await node.close();
    await refDb.close();
    await refChain.stop();
  }
});
