/**
 * "Volunteers online now" (GET /search `onlineWorkers`) counts workers that are working, not those that
 * once took a lease: a stopped worker drops out when it releases its lease, a silent one (a closed tab)
 * once its last heartbeat is older than ONLINE_WINDOW_MS, and a worker between tasks stays counted for
 * that window after its result.
 */
import type { Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { train } from '../engine/train.ts';
import { cambrianDomain, signResultVote, signSessionGrant } from '../protocol/eip712.ts';
import { ONLINE_WINDOW_MS, SearchStatusSchema } from '../protocol/http.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { tinySpec } from './testing.ts';
import { Views } from './views.ts';

const domain = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

describe('workers online', () => {
  let db: Db;
  let c: Coordinator;
  let api: string;

  const post = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  /** A worker with a session that takes one lease, as a tab does after Start. */
  async function workerWithLease() {
    const key = privateKeyToAccount(generatePrivateKey());
    const grant = {
      worker: key.address,
      sessionKey: key.address,
      expiresAt: Math.floor(Date.now() / 1000) + 2 * 24 * 3600,
    };
    const grantSig = await signSessionGrant(key, domain, { ...grant, expiresAt: BigInt(grant.expiresAt) });
    const session = await post('/sessions', { grant, grantSig });
    expect(session.status).toBe(201);
    const token = session.body.token as string;
    const lease = await post('/leases', {}, token);
    expect(lease.status).toBe(200);
    return { key, token, leaseId: lease.body.leaseId as string, taskId: lease.body.taskId as Hex };
  }

  /** GET /search, checked against the shared schema. */
  const online = async () =>
    SearchStatusSchema.parse(await (await fetch(`${api}/search`)).json()).onlineWorkers;

  beforeAll(async () => {
    db = await openDb({ url: 'memory://' });
    c = await startCoordinator({ db, domain, log: () => {}, rateLimits: false });
    api = `${c.url}/api/v1`;
    for (const seed of [700, 701, 702]) await c.store.addTask(tinySpec(seed));
  });
  afterAll(async () => {
    await c.close();
    await db.close();
  });

  it('counts live workers; a stopped one drops out at once, a silent one after the window', async () => {
    expect(await online()).toBe(0);
    const stopping = await workerWithLease();
    const closing = await workerWithLease();
    const submitting = await workerWithLease();
    expect(await online()).toBe(3);

    // Stop: the tab releases its lease and no longer counts.
    expect((await post(`/leases/${stopping.leaseId}/release`, {}, stopping.token)).status).toBe(204);
    expect(await online()).toBe(2);

    // A result keeps its worker counted while it rests before the next lease.
    const spec = await c.store.spec(submitting.taskId);
    const result = await train(spec, await loadDataset('blobs'));
    const voteSig = await signResultVote(submitting.key, domain, {
      taskId: result.taskId as Hex,
      digest: result.digest as Hex,
      worker: submitting.key.address,
    });
    const submitted = await post(
      '/results',
      { leaseId: submitting.leaseId, result, voteSig },
      submitting.token,
    );
    expect(submitted.status).toBe(202);
    expect(await online()).toBe(2);

    // A computing tab heartbeats; once closed it sends no more: its lease still runs, but past the window
    // nobody counts.
    const beat = await post(`/leases/${closing.leaseId}/heartbeat`, { step: 1, steps: 2 }, closing.token);
    expect(beat.status).toBe(200);
    const later = new Views(db);
    expect((await later.search(Date.now() + ONLINE_WINDOW_MS / 2)).onlineWorkers).toBe(2);
    expect((await later.search(Date.now() + ONLINE_WINDOW_MS + 1000)).onlineWorkers).toBe(0);
    // The last-five-minutes figure still counts all three.
    expect((await later.search()).activeWorkers).toBe(3);
  });
});
