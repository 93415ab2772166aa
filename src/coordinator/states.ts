/**
 * The referee's state requests (DESIGN §2/§4, Verde-style refereed delegation): to recompute only
 * the diverging checkpoint interval, the referee needs the state (params + momentum) at the last
 * checkpoint every side agrees on. It opens a request here; a worker that voted on the task is told
 * about it in its next `POST /leases?states=1` answer and uploads the state with `POST /states`; the
 * upload is kept only if keccak256(params ‖ momentum) equals the agreed stateHash. Requests live in
 * the database, so an upload may reach any coordinator process sharing it.
 */
import type { Hex } from 'viem';
import { modelPlan } from '../engine/plan.ts';
import { stateHashOf } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import type { AnyTaskSpec } from '../protocol/index.ts';
import type { Db } from './db.ts';
import { Refusal } from './errors.ts';
import { WorkerSet } from './worker-set.ts';

/** What the lease route answers instead of a lease when the referee needs this worker's state. */
export interface StateRequest {
  kind: 'state';
  taskId: Hex;
  /** Steps completed at the wanted checkpoint. */
  step: number;
  /** The agreed stateHash there; the upload must hash to it. */
  stateHash: Hex;
}

/** An open state request as `requestFor` claims it. */
interface ClaimedRow {
  task_id: Hex;
  step: number;
  state_hash: Hex;
}

/** Base64 of 2 × paramCount little-endian i32 plus the JSON around it. */
export function stateBodyBytes(paramCount: number): number {
  return 2 * Math.ceil((paramCount * 4) / 3) * 4 + 4096;
}

/** Little-endian i32 from base64 (the engine refuses big-endian hosts, so the bytes are the array's). */
export function decodeI32(base64: string): Int32Array {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length % 4 !== 0) throw new Refusal(400, 'state arrays must be whole little-endian i32s');
  const out = new Int32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export function encodeI32(a: Int32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export class StateExchange {
  /** Workers with a state_asks row (every lease with ?states=1 asks). */
  private readonly owed: WorkerSet;
  private maxBody = 0;
  private maxBodyAt = Number.NEGATIVE_INFINITY;

  /** `refreshMs`: how stale the workers owed an ask (the lease route reads them) and the body bound may be. */
  constructor(
    readonly db: Db,
    readonly refreshMs = 250,
  ) {
    this.owed = new WorkerSet(
      async () =>
        (await db.query<{ worker: string }>('SELECT DISTINCT worker FROM state_asks')).map((r) => r.worker),
      refreshMs,
    );
  }

  /**
   * Opens the request for the state after `step` of the task (idempotent) and returns when it was
   * first requested and, once a valid upload arrived, the state. `ask` false: the workers may upload
   * it but are not told through the lease route (a dispute's 'state' jobs ask them instead, since
   * the state is mid-interval and only a replay reaches it).
   */
  async open(
    taskId: Hex,
    spec: AnyTaskSpec,
    step: number,
    stateHash: Hex,
    workers: string[],
    ask = true,
  ): Promise<{ requestedAt: number; state?: TrainState; uploadedBy?: string }> {
    const { paramCount } = modelPlan(spec);
    // A new request's voters are each owed one ask (state_asks); reopening one asks nobody again.
    await this.db.query(
      `WITH opened AS (
         INSERT INTO state_requests (task_id, step, state_hash, param_count, workers, requested_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT (task_id, step) DO NOTHING
         RETURNING task_id, step, requested_at, workers)
       INSERT INTO state_asks (worker, requested_at, task_id, step)
       SELECT w, o.requested_at, o.task_id, o.step FROM opened o, jsonb_array_elements_text(o.workers) w
       WHERE $7`,
      [taskId, step, stateHash, paramCount, JSON.stringify(workers), Date.now(), ask],
    );
    if (ask) for (const w of workers) this.owed.add(w);
    this.maxBody = Math.max(this.maxBody, stateBodyBytes(paramCount));
    const [row] = await this.db.query<{
      requested_at: number;
      params: string | null;
      momentum: string | null;
      uploaded_by: string | null;
    }>(
      'SELECT requested_at, params, momentum, uploaded_by FROM state_requests WHERE task_id = $1 AND step = $2',
      [taskId, step],
    );
    if (!row.params || !row.momentum) return { requestedAt: row.requested_at };
    return {
      requestedAt: row.requested_at,
      state: { step, params: decodeI32(row.params), momentum: decodeI32(row.momentum) },
      uploadedBy: row.uploaded_by ?? undefined,
    };
  }

  /** Forgets a task's requests and their states (once the referee decided it). */
  async close(taskId: Hex): Promise<void> {
    await this.db.query('DELETE FROM state_requests WHERE task_id = $1', [taskId]);
  }

  /**
   * The oldest open request this worker voted on and has not been asked about yet (each voter is
   * asked once), claimed in one statement: its state_asks row is taken (an index probe on the
   * worker). No query for a worker owed nothing (see `WorkerSet`).
   */
  async requestFor(worker: string): Promise<StateRequest | null> {
    if (!(await this.owed.mayHave(worker))) return null;
    const [row] = await this.db.query<ClaimedRow>(
      `DELETE FROM state_asks a
       USING (SELECT worker, requested_at, task_id, step FROM state_asks WHERE worker = $1
              ORDER BY requested_at, task_id, step LIMIT 1 FOR UPDATE SKIP LOCKED) x,
             state_requests r
       WHERE a.worker = x.worker AND a.requested_at = x.requested_at AND a.task_id = x.task_id
         AND a.step = x.step AND r.task_id = a.task_id AND r.step = a.step
       RETURNING a.task_id, a.step, r.state_hash`,
      [worker],
    );
    if (!row) {
      this.owed.delete(worker);
      return null;
    }
    return { kind: 'state', taskId: row.task_id, step: row.step, stateHash: row.state_hash };
  }

  /**
   * Largest state upload body any request allows (0 when there is none). Requests already answered
   * count too: a second voter's upload of a state the first one sent must get its 409, not a 413 (a
   * tab's MNIST state is larger than the default body bound, so a 413 looked like the tab failing).
   * Cached for `refreshMs` (every upload asks, and the scan was a large share of an audited result's
   * cost); a declared body larger than the cached bound reads it afresh, so a request another
   * coordinator opened a moment ago is not refused for a stale bound.
   */
  async maxBodyBytes(declared = 0): Promise<number> {
    if (Date.now() - this.maxBodyAt > this.refreshMs || declared > this.maxBody) {
      const [row] = await this.db.query<{ n: number | null }>(
        'SELECT max(param_count)::int AS n FROM state_requests',
      );
      this.maxBody = row.n === null ? 0 : stateBodyBytes(row.n);
      this.maxBodyAt = Date.now();
    }
    return this.maxBody;
  }

  /** Checks and keeps a worker's upload; refuses (4xx) anything that is not the agreed state. */
  async upload(worker: string, taskId: Hex, step: number, params: string, momentum: string): Promise<void> {
    const [row] = await this.db.query<{
      state_hash: Hex;
      param_count: number;
      workers: string[];
      done: boolean;
    }>(
      `SELECT state_hash, param_count, workers, params IS NOT NULL AS done FROM state_requests
       WHERE task_id = $1 AND step = $2`,
      [taskId, step],
    );
    if (!row) throw new Refusal(404, 'no state was requested for this task and step');
    if (!row.workers.includes(worker))
      throw new Refusal(403, 'only a worker that voted on the task may upload its state');
    if (row.done) throw new Refusal(409, 'this state was already uploaded');
    const state = { params: decodeI32(params), momentum: decodeI32(momentum) };
    if (state.params.length !== row.param_count || state.momentum.length !== row.param_count) {
      throw new Refusal(422, `params and momentum must hold ${row.param_count} i32 each`);
    }
    if (stateHashOf(state) !== row.state_hash) {
      throw new Refusal(422, `state does not hash to the agreed stateHash ${row.state_hash} at step ${step}`);
    }
    // Kept: the other voters need not be asked any more.
    await this.db.query(
      `WITH kept AS (
         UPDATE state_requests SET params = $3, momentum = $4, uploaded_by = $5, uploaded_at = $6
         WHERE task_id = $1 AND step = $2 AND params IS NULL RETURNING task_id, step)
       DELETE FROM state_asks a USING kept WHERE a.task_id = kept.task_id AND a.step = kept.step`,
      [taskId, step, params, momentum, worker, Date.now()],
    );
  }
}
