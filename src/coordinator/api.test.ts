/** Hostile and malformed requests get 4xx with a reason, and the coordinator keeps serving. */
import { request } from 'node:http';
import type { Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { train } from '../engine/train.ts';
import { cambrianDomain, signResultVote, signSessionGrant } from '../protocol/eip712.ts';
import type { TaskResult } from '../protocol/index.ts';
import { MAX_BODY_BYTES } from './api.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { tinySpec } from './testing.ts';

/** Status of a POST whose body is too large (the server answers before reading it all, then hangs up). */
/** POSTs `bytes` bytes, declared in content-length, or streamed in chunks without it. */
function oversized(url: string, bytes: number, chunked = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': bytes }) },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end(Buffer.alloc(bytes, 0x20));
  });
}

const domain = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

describe('API refusals', () => {
  let db: Db;
  let c: Coordinator;
  let api: string;
  let result: TaskResult;

  const post = async (path: string, body: unknown, token?: string, raw = false) => {
    const res = await fetch(`${api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: raw ? (body as string) : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  async function session(key = privateKeyToAccount(generatePrivateKey())) {
    const grant = {
      worker: key.address,
      sessionKey: key.address,
      expiresAt: Math.floor(Date.now() / 1000) + 2 * 24 * 3600,
    };
    const grantSig = await signSessionGrant(key, domain, { ...grant, expiresAt: BigInt(grant.expiresAt) });
    const res = await post('/sessions', { grant, grantSig });
    expect(res.status).toBe(201);
    return { key, token: res.body.token as string };
  }

  const vote = (key: ReturnType<typeof privateKeyToAccount>, r: TaskResult, worker: Hex = key.address) =>
    signResultVote(key, domain, { taskId: r.taskId as Hex, digest: r.digest as Hex, worker });

  beforeAll(async () => {
    db = await openDb({ url: 'memory://' });
    c = await startCoordinator({ db, domain, log: () => {} });
    api = `${c.url}/api/v1`;
    const spec = tinySpec(900);
    await c.store.addTask(spec);
    result = await train(spec, await loadDataset('blobs'));
  });
  afterAll(async () => {
    await c.close();
    await db.close();
  });

  it('refuses malformed, oversized and unauthenticated requests', async () => {
    expect((await post('/sessions', '{"grant": ', undefined, true)).status).toBe(400);
    expect((await post('/sessions', { grant: 1 })).status).toBe(400);
    expect(await oversized(`${api}/results`, MAX_BODY_BYTES + 10)).toBe(413);
    expect(await oversized(`${api}/results`, MAX_BODY_BYTES + 10, true)).toBe(413);
    // Just under the limit is read and judged on its content (spaces are not JSON).
    expect(await oversized(`${api}/results`, MAX_BODY_BYTES - 10, true)).toBe(400);
    const noToken = await post('/leases', {});
    expect(noToken.status).toBe(401);
    expect(noToken.body.error).toMatch(/token/);
    expect((await post('/leases', {}, 'not-a-token')).status).toBe(401);
    const text = await fetch(`${api}/sessions`, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
  });

  it('refuses a grant too short to outlive its settlement', async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const grant = {
      worker: key.address,
      sessionKey: key.address,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
    };
    const grantSig = await signSessionGrant(key, domain, { ...grant, expiresAt: BigInt(grant.expiresAt) });
    const res = await post('/sessions', { grant, grantSig });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/shorter than/);
  });

  it('answers 429 with Retry-After over a rate limit', async () => {
    const own = await openDb({ url: 'memory://' });
    const limited = await startCoordinator({
      db: own,
      domain,
      log: () => {},
      rateLimits: { perAddress: null, sessionsPerAddress: null, perToken: { limit: 3, windowMs: 60_000 } },
    });
    try {
      const key = privateKeyToAccount(generatePrivateKey());
      const grant = {
        worker: key.address,
        sessionKey: key.address,
        expiresAt: Math.floor(Date.now() / 1000) + 2 * 86400,
      };
      const grantSig = await signSessionGrant(key, domain, { ...grant, expiresAt: BigInt(grant.expiresAt) });
      const opened = await fetch(`${limited.url}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant, grantSig }),
      });
      const { token } = (await opened.json()) as { token: string };
      const lease = (authorization = `Bearer ${token}`) =>
        fetch(`${limited.url}/api/v1/leases`, { method: 'POST', headers: { authorization } });
      for (let i = 0; i < 3; i++) expect((await lease()).status).not.toBe(429);
      // Another spelling of the same token is the same counter (it once made a fresh one).
      for (const spelling of [`bearer ${token}`, `BEARER  ${token}`, `Bearer\t${token} `])
        expect((await lease(spelling)).status).toBe(429);
      const over = await lease();
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await over.json()) as { error: string }).error).toMatch(/too many requests/);
    } finally {
      await limited.close();
      await own.close();
    }
  });

  it('refuses a grant signed by someone else', async () => {
    const worker = privateKeyToAccount(generatePrivateKey());
    const mallory = privateKeyToAccount(generatePrivateKey());
    const grant = {
      worker: worker.address,
      sessionKey: mallory.address,
      expiresAt: Math.floor(Date.now() / 1000) + 2 * 24 * 3600,
    };
    const grantSig = await signSessionGrant(mallory, domain, {
      ...grant,
      expiresAt: BigInt(grant.expiresAt),
    });
    const res = await post('/sessions', { grant, grantSig });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/bad signature/);
  });

  it('refuses bad vote signatures, other workers’ leases, replays and stale leases', async () => {
    const a = await session();
    const b = await session();
    const leaseA = await post('/leases', {}, a.token);
    const leaseB = await post('/leases', {}, b.token);
    expect(leaseA.status).toBe(200);
    expect(leaseB.status).toBe(200);
    const leaseId = leaseA.body.leaseId as string;

    // Signed by the wrong key.
    const forged = await post(
      '/results',
      { leaseId, result, voteSig: await vote(b.key, result, a.key.address) },
      a.token,
    );
    expect(forged.status).toBe(401);
    // A digest that does not match the fields.
    const tampered = { ...result, valCorrect: result.valCorrect + 1 };
    const bad = await post(
      '/results',
      { leaseId, result: tampered, voteSig: await vote(a.key, tampered) },
      a.token,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/digest/);
    // B submits on A's lease (with B's own valid signature).
    const theft = await post('/results', { leaseId, result, voteSig: await vote(b.key, result) }, b.token);
    expect(theft.status).toBe(403);
    // A heartbeats B's lease.
    expect((await post(`/leases/${leaseB.body.leaseId}/heartbeat`, {}, a.token)).status).toBe(403);
    // Unknown lease.
    const unknown = await post(
      '/results',
      { leaseId: crypto.randomUUID(), result, voteSig: await vote(a.key, result) },
      a.token,
    );
    expect(unknown.status).toBe(404);

    const good = { leaseId, result, voteSig: await vote(a.key, result) };
    expect((await post('/results', good, a.token)).status).toBe(202);
    const replay = await post('/results', good, a.token);
    expect(replay.status).toBe(409);
    expect(replay.body.error).toMatch(/duplicate/);

    // Nobody sees another's result before settlement.
    const task = (await (await fetch(`${api}/tasks/${result.taskId}`)).json()) as {
      votes: object[];
      digest: unknown;
    };
    expect(task.digest).toBeNull();
    expect(task.votes.every((v) => !('digest' in v))).toBe(true);

    // B's lease expires; its late result is stale.
    await db.query('UPDATE leases SET deadline = 0 WHERE lease_id = $1', [leaseB.body.leaseId]);
    await c.store.expireLeases();
    const late = await post(
      '/results',
      { leaseId: leaseB.body.leaseId, result, voteSig: await vote(b.key, result) },
      b.token,
    );
    expect(late.status).toBe(409);
    expect(late.body.error).toMatch(/stale/);
  });

  it('keeps serving, and documents every route', async () => {
    expect((await fetch(`${api}/info`)).status).toBe(200);
    const doc = (await (await fetch(`${api}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of [
      '/info',
      '/sessions',
      '/leases',
      '/leases/{leaseId}/heartbeat',
      '/results',
      '/tasks/{taskId}',
      '/leaderboard',
      '/search',
      '/workers/{address}',
    ]) {
      expect(doc.paths).toHaveProperty(path);
    }
    expect((await fetch(`${api}/docs`)).status).toBe(200);
    expect((await fetch(`${api}/nope`)).status).toBe(404);
  });
});
