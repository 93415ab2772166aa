/**
 * Leasing across searches (store level): every lease says whose work it is, searches are drawn by
 * their reward per unit of work, and a search starts no more tasks than its pool can pay for, less
 * what its leased and unsettled tasks reserved — on PGlite and PostgreSQL, and with two coordinators
 * sharing one PostgreSQL database.
 */
import { type Hex, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from './db.ts';
import type { Refusal } from './errors.ts';
import { insertSearch, moveSearch, recordPool, type SearchState, searchRoom } from './searches.ts';
import { type Lease, type Session, Store, searchWeights } from './store.ts';
import { DATABASES, freshPostgres, TEST_DATABASE_URL, tinySpec } from './testing.ts';

const worker = (i: number): Hex => `0x${(i + 0x500).toString(16).padStart(40, '0')}` as Hex;
const sponsor = (i: number): Hex => `0x${(i + 0xa00).toString(16).padStart(40, 'a')}` as Hex;
const REWARD = 10n ** 15n;

async function sessionFor(store: Store, i: number): Promise<Session> {
  const token = await store.createSession(
    { worker: worker(i), sessionKey: worker(i), expiresAt: Math.floor(Date.now() / 1000) + 3600 },
    `0x${'11'.repeat(65)}`,
  );
  return store.session(token);
}

let nextSearch = 0;
/** A search row with `pool` wei in its pool (as if read from the chain just now). */
async function search(
  store: Store,
  opts: { pool: bigint; reward?: bigint; state?: SearchState; budget?: number; maxSpend?: bigint },
): Promise<Hex> {
  const n = nextSearch++;
  const id = keccak256(toHex(`search ${n} ${Math.random()}`));
  const reward = opts.reward ?? REWARD;
  await insertSearch(store.db, {
    searchId: id,
    sponsor: sponsor(n),
    manifest: { n },
    manifestHash: keccak256(toHex(n)),
    name: `search ${n}`,
    datasetSha256: `0x${'00'.repeat(32)}`,
    state: opts.state ?? 'running',
    rewardWei: reward,
    budgetTasks: opts.budget ?? 100,
    maxSpendWei: opts.maxSpend ?? reward * BigInt(opts.budget ?? 100),
  });
  await recordPool(store.db, id, opts.pool, Date.now());
  store.searchesChanged();
  return id;
}

let nextSeed = 3000;
async function tasksOf(store: Store, searchId: Hex | null, n: number): Promise<Hex[]> {
  const ids: Hex[] = [];
  for (let i = 0; i < n; i++)
    ids.push((await store.addTask(tinySpec(nextSeed++), null, store.db, searchId))!);
  store.searchesChanged();
  return ids;
}

/** Every worker asks once; the leases granted. */
async function leaseAll(store: Store, sessions: Session[]): Promise<Lease[]> {
  const answers = await Promise.all(sessions.map((s) => store.lease(s)));
  return answers.filter((l): l is Lease => l !== null);
}

for (const { name, open } of DATABASES) {
  describe(`leasing across searches on ${name}`, () => {
    let db: Awaited<ReturnType<typeof open>>;
    let store: Store;
    let nextWorker = 0;
    const workers = (n: number) =>
      Promise.all(Array.from({ length: n }, () => sessionFor(store, nextWorker++)));
    beforeAll(async () => {
      db = await open();
      store = new Store(db.db, {
        leaseMs: 60_000,
        quorum: 2,
        initialReplicas: 2,
        maxReplicas: 3,
        maxLiveLeases: 1,
      });
    });
    afterAll(() => db.cleanup());
    const clear = async () => {
      // Each case starts with no open task left over from the one before.
      await db.db.query(`UPDATE tasks SET state = 'failed' WHERE state = 'open'`);
      await db.db.query(`UPDATE leases SET state = 'released' WHERE state = 'active'`);
      store.searchesChanged();
    };

    it('says whose work each lease is, and serves two running searches side by side', async () => {
      await clear();
      const a = await search(store, { pool: 100n * REWARD });
      const b = await search(store, { pool: 100n * REWARD });
      await tasksOf(store, a, 10);
      await tasksOf(store, b, 10);
      const leases = await leaseAll(store, await workers(40));
      expect(leases).toHaveLength(40); // 20 tasks × 2 replicas
      const bySearch = new Map<string, number>();
      for (const l of leases) {
        expect(l.search).toMatchObject({ rewardPerTask: REWARD.toString() });
        bySearch.set(l.search!.id, (bySearch.get(l.search!.id) ?? 0) + 1);
      }
      expect(bySearch).toEqual(
        new Map([
          [a, 20],
          [b, 20],
        ]),
      );
      const [own] = await tasksOf(store, null, 1);
      const [l] = await leaseAll(store, await workers(1));
      expect(l).toMatchObject({ taskId: own, search: null });
    });

    it('starts no more tasks than the pool pays for; leased tasks keep their replicas', async () => {
      await clear();
      const s = await search(store, { pool: 3n * REWARD + REWARD / 2n });
      const ids = await tasksOf(store, s, 5);
      expect(await searchRoom(db.db, s)).toBe(3);
      const first = await leaseAll(store, await workers(12));
      // 3 tasks reserved (3 × reward ≤ pool < 4 × reward), each with both its replicas.
      const tasks = new Set(first.map((l) => l.taskId));
      expect(tasks.size).toBe(3);
      expect(first).toHaveLength(6);
      expect(await searchRoom(db.db, s)).toBe(0);
      // A replica that expires is reissued even now: its task reserved its reward when first leased.
      const gone = first[0];
      await db.db.query(`UPDATE leases SET deadline = 0 WHERE lease_id = $1`, [gone.leaseId]);
      await store.expireLeases();
      store.searchesChanged();
      const again = await leaseAll(store, await workers(3));
      expect(again.map((l) => l.taskId)).toEqual([gone.taskId]);
      // Funds arrive: the rest start.
      await recordPool(db.db, s, 5n * REWARD, Date.now());
      store.searchesChanged();
      const later = await leaseAll(store, await workers(6));
      expect(new Set(later.map((l) => l.taskId))).toEqual(new Set(ids.filter((id) => !tasks.has(id))));
    });

    it('frees a settled task’s reservation only once a pool read after its settlement saw it paid', async () => {
      await clear();
      const s = await search(store, { pool: 2n * REWARD });
      const ids = await tasksOf(store, s, 3);
      const leased = await leaseAll(store, await workers(6));
      expect(new Set(leased.map((l) => l.taskId)).size).toBe(2);
      const settled = leased[0].taskId;
      await db.db.query(`UPDATE tasks SET state = 'settled', settled_at = $2 WHERE task_id = $1`, [
        settled,
        Date.now(),
      ]);
      // The last pool read was before the settlement: the pool still counts that reward, so no room.
      expect(await searchRoom(db.db, s)).toBe(0);
      // A read after it: the chain paid one reward out of the pool (2 → 1), the settled task reserves no more.
      await recordPool(db.db, s, REWARD, Date.now() + 1);
      expect(await searchRoom(db.db, s)).toBe(0); // one reward left, one task (the other) still reserved
      await db.db.query(`UPDATE tasks SET state = 'failed' WHERE task_id = $1`, [
        leased.find((l) => l.taskId !== settled)!.taskId,
      ]);
      expect(await searchRoom(db.db, s)).toBe(1); // a failed task is never paid: its reward is free again
      store.searchesChanged();
      const last = await leaseAll(store, await workers(2));
      const unstarted = ids.find((id) => !leased.some((l) => l.taskId === id));
      expect(last.map((l) => l.taskId)).toEqual([unstarted, unstarted]); // both its replicas
    });

    it('a paused, cancelled or unfunded search finishes what it started and starts nothing new', async () => {
      await clear();
      const s = await search(store, { pool: 10n * REWARD });
      const [started, waiting] = await tasksOf(store, s, 2);
      const [w1, w2, w3, w4] = await workers(4);
      // One replica of `started` out; then the sponsor pauses.
      await db.db.query(`UPDATE tasks SET open_slots = 0 WHERE task_id = $1`, [waiting]);
      store.searchesChanged();
      expect((await store.lease(w1))?.taskId).toBe(started);
      await db.db.query(`UPDATE tasks SET open_slots = 2 WHERE task_id = $1`, [waiting]);
      await db.db.tx((q) => moveSearch(q, s, 'paused'));
      store.searchesChanged();
      const during = await leaseAll(store, [w2, w3]);
      expect(during.map((l) => l.taskId)).toEqual([started]); // its second replica, nothing of `waiting`
      await db.db.tx((q) => moveSearch(q, s, 'running'));
      store.searchesChanged();
      expect((await store.lease(w4))?.taskId).toBe(waiting);
      await db.db.tx((q) => moveSearch(q, s, 'cancelled'));
      await expect(db.db.tx((q) => moveSearch(q, s, 'running'))).rejects.toMatchObject({ status: 409 });
    });

    it('a search closed on chain past its lease deadline gets no lease at all', async () => {
      await clear();
      const s = await search(store, { pool: 10n * REWARD });
      await tasksOf(store, s, 1);
      const [w1, w2] = await workers(2);
      expect(await store.lease(w1)).not.toBeNull();
      await recordPool(db.db, s, 10n * REWARD, Date.now(), { state: 'closed', leaseUntil: Date.now() - 1 });
      store.searchesChanged();
      expect(await store.lease(w2)).toBeNull();
    });

    it('the spending cap bounds the tasks started, whatever the pool', async () => {
      await clear();
      const s = await search(store, { pool: 100n * REWARD, maxSpend: 2n * REWARD });
      await tasksOf(store, s, 4);
      const leased = await leaseAll(store, await workers(8));
      expect(new Set(leased.map((l) => l.taskId)).size).toBe(2);
    });
  });
}

describe('the lottery over searches', () => {
  const snap = (reward: string, meanWork: number | null) => ({
    search: { id: '0x' as Hex, sponsor: '0x' as Hex, name: '', rewardPerTask: reward },
    state: 'running',
    room: 1,
    leaseUntil: null,
    meanWork,
  });
  it('weighs a search by its reward per unit of work; the coordinator’s own tasks as the best', () => {
    const w = searchWeights(
      new Map([
        ['a', snap('3000', 1000)], // 3 wei per MAC
        ['b', snap('3000', 3000)], // 1 wei per MAC: the same reward for 3× the work
        ['c', snap('0', 10)],
      ]),
    );
    expect(w.get('a')).toBeCloseTo(3 * w.get('b')!);
    expect(w.get('c')).toBe(0);
    expect(w.get('')).toBe(w.get('a'));
  });
});

describe.skipIf(!TEST_DATABASE_URL)('two coordinators on one PostgreSQL, one search', () => {
  it('never start more tasks than its pool pays for', async () => {
    const fresh = await freshPostgres();
    const [dbA, dbB] = [await openDb({ url: fresh.url }), await openDb({ url: fresh.url })];
    try {
      const opts = { leaseMs: 60_000, quorum: 2, initialReplicas: 2, maxReplicas: 2, maxLiveLeases: 1 };
      const [a, b] = [new Store(dbA, opts), new Store(dbB, opts)];
      const s = await search(a, { pool: 5n * REWARD });
      await tasksOf(a, s, 12);
      const sessions = await Promise.all(
        Array.from({ length: 24 }, (_, i) => sessionFor(i % 2 ? a : b, 900 + i)),
      );
      const answers = await Promise.allSettled(sessions.flatMap((x) => [a.lease(x), b.lease(x)]));
      for (const answer of answers)
        if (answer.status === 'rejected') expect((answer.reason as Refusal).status).toBe(429);
      const [{ n }] = await dbA.query<{ n: number }>(`SELECT count(DISTINCT task_id)::int AS n FROM leases`);
      expect(n).toBe(5);
      const [{ reserved }] = await dbA.query<{ reserved: number }>(
        `SELECT count(*)::int AS reserved FROM tasks WHERE leased_at IS NOT NULL`,
      );
      expect(reserved).toBe(5);
    } finally {
      await dbA.close();
      await dbB.close();
      await fresh.drop();
    }
  });
});
