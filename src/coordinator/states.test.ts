/**
 * The state exchange's asks (state_asks): each voter of a request is told of it once, by the lease
 * route; a kept upload stops the others being asked; reopening asks nobody again; closing forgets
 * it all. On PGlite and, when configured, PostgreSQL.
 */
import type { Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelPlan } from '../engine/plan.ts';
import { stateHashOf } from '../engine/train-cpu.ts';
import { encodeI32, StateExchange } from './states.ts';
import { Store } from './store.ts';
import { DATABASES, tinySpec } from './testing.ts';

for (const { name, open } of DATABASES) {
  describe(`state asks on ${name}`, () => {
    let db: Awaited<ReturnType<typeof open>>;
    let store: Store;
    beforeAll(async () => {
      db = await open();
      store = new Store(db.db);
    });
    afterAll(() => db.cleanup());

    const request = async (seed: number) => {
      const spec = tinySpec(seed);
      const taskId = (await store.addTask(spec)) as Hex;
      const n = modelPlan(spec).paramCount;
      const state = { params: new Int32Array(n).fill(seed), momentum: new Int32Array(n).fill(-seed) };
      return { spec, taskId, state, stateHash: stateHashOf(state) };
    };

    it('asks each voter once, and nobody after a kept upload, a reopen or a close', async () => {
      const states = new StateExchange(db.db);
      const r = await request(501);
      await states.open(r.taskId, r.spec, 4, r.stateHash, ['0xa', '0xb', '0xc']);
      expect(await states.requestFor('0xa')).toEqual({
        kind: 'state',
        taskId: r.taskId,
        step: 4,
        stateHash: r.stateHash,
      });
      expect(await states.requestFor('0xa')).toBeNull();
      expect(await states.requestFor('0xd')).toBeNull(); // not a voter
      // Reopening (the audit pass asks again each pass) asks nobody twice.
      await states.open(r.taskId, r.spec, 4, r.stateHash, ['0xa', '0xb', '0xc']);
      expect(await states.requestFor('0xa')).toBeNull();
      // 0xb uploads without being asked (a voter may); 0xc is then owed nothing.
      await states.upload('0xb', r.taskId, 4, encodeI32(r.state.params), encodeI32(r.state.momentum));
      expect(await states.requestFor('0xc')).toBeNull();
      expect((await states.open(r.taskId, r.spec, 4, r.stateHash, ['0xa', '0xb', '0xc'])).uploadedBy).toBe(
        '0xb',
      );

      // A second process sharing the database learns of a request it did not open.
      const other = new StateExchange(db.db, 0);
      const r2 = await request(502);
      await states.open(r2.taskId, r2.spec, 2, r2.stateHash, ['0xa', '0xe']);
      expect(await other.requestFor('0xe')).toMatchObject({ taskId: r2.taskId, step: 2 });
      // Oldest first for a worker owed several; closing a task forgets its asks.
      await states.open(r2.taskId, r2.spec, 6, r2.stateHash, ['0xa']);
      expect(await states.requestFor('0xa')).toMatchObject({ taskId: r2.taskId, step: 2 });
      await states.close(r2.taskId);
      expect(await other.requestFor('0xa')).toBeNull();
      expect(await db.db.query('SELECT 1 FROM state_asks WHERE task_id = $1', [r2.taskId])).toHaveLength(0);
    });

    it('bounds an upload body by the largest request, read afresh for a larger declared body', async () => {
      const states = new StateExchange(db.db, 60_000);
      const cached = await states.maxBodyBytes();
      const big = tinySpec(503, { units: 64 });
      const taskId = (await store.addTask(big)) as Hex;
      // Opened by another process: this one's cached bound is stale until a larger body is declared.
      await new StateExchange(db.db).open(taskId, big, 2, '0x00', ['0xa']);
      expect(await states.maxBodyBytes()).toBe(cached);
      expect(await states.maxBodyBytes(cached + 1)).toBeGreaterThan(cached);
    });
  });
}
