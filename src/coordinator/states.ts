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
  private anyOpen = false;
  private fetchedAt = Number.NEGATIVE_INFINITY;

  /** `refreshMs`: how stale the in-memory "is any request open" flag may be (the lease route reads it). */
  constructor(
    readonly db: Db,
    readonly refreshMs = 250,
  ) {}

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
    await this.db.query(
      `INSERT INTO state_requests (task_id, step, state_hash, param_count, workers, asked, requested_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) ON CONFLICT (task_id, step) DO NOTHING`,
      [
        taskId,
        step,
        stateHash,
        modelPlan(spec).paramCount,
        JSON.stringify(workers),
        JSON.stringify(ask ? [] : workers),
        Date.now(),
      ],
    );
    this.anyOpen = true;
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
    this.fetchedAt = Number.NEGATIVE_INFINITY;
  }

  /** Whether any request is open (cached for `refreshMs`; opening one sets it at once). */
  private async anyOpenRequest(): Promise<boolean> {
    if (Date.now() - this.fetchedAt > this.refreshMs) {
      const [row] = await this.db.query<{ open: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM state_requests WHERE params IS NULL) AS open',
      );
      this.anyOpen = row.open;
      this.fetchedAt = Date.now();
    }
    return this.anyOpen;
  }

  /**
   * The oldest open request this worker voted on and has not been asked yet (each voter is asked
   * once), claimed in one statement. No query at all while nothing is open; with audits on every
   * task there always is, and the database finds this worker's request instead of every lease
   * reading the whole list.
   */
  async requestFor(worker: string): Promise<StateRequest | null> {
    if (!(await this.anyOpenRequest())) return null;
    const [row] = await this.db.query<ClaimedRow>(
      `UPDATE state_requests r SET asked = r.asked || jsonb_build_array($1::text)
       FROM (SELECT task_id, step FROM state_requests
             WHERE params IS NULL AND workers @> jsonb_build_array($1::text)
               AND NOT asked @> jsonb_build_array($1::text)
             ORDER BY requested_at, task_id, step LIMIT 1 FOR UPDATE SKIP LOCKED) x
       WHERE r.task_id = x.task_id AND r.step = x.step
       RETURNING r.task_id, r.step, r.state_hash`,
      [worker],
    );
    return row ? { kind: 'state', taskId: row.task_id, step: row.step, stateHash: row.state_hash } : null;
  }

  /**
   * Largest state upload body any request allows (0 when there is none). Requests already answered
   * count too: a second voter's upload of a state the first one sent must get its 409, not a 413 (a
   * tab's MNIST state is larger than the default body bound, so a 413 looked like the tab failing).
   */
  async maxBodyBytes(): Promise<number> {
    const [row] = await this.db.query<{ n: number | null }>(
      'SELECT max(param_count)::int AS n FROM state_requests',
    );
    return row.n === null ? 0 : stateBodyBytes(row.n);
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
    await this.db.query(
      `UPDATE state_requests SET params = $3, momentum = $4, uploaded_by = $5, uploaded_at = $6
       WHERE task_id = $1 AND step = $2 AND params IS NULL`,
      [taskId, step, params, momentum, worker, Date.now()],
    );
    this.fetchedAt = Number.NEGATIVE_INFINITY;
  }
}
