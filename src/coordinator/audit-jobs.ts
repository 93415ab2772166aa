/**
 * Verification work handed to workers (docs/TRUST.md): an audit job asks one worker to replay a span
 * of a task it never held, from a state a voter uploaded, and answer the state hash (and, for the
 * last span, the validation) it computed. The coordinator only compares hashes: its CPU runs a span
 * only when no drawn worker answers in time or when an answer disagrees (./audit.ts).
 *
 * Who audits: the job's worker is drawn when the job is created (after the votes), from the workers
 * that asked for verification work in the last minute (`POST /leases?audits=1`), never one that held
 * the task nor one drawn for the job before, never a caught one, weighted by verified results. Asking
 * faster or from more keys buys no more audits than the verified work behind them: a cabal audits
 * about its share of the network's verified work, and a fresh key audits nothing until its own results
 * are verified (unless nobody has any yet). A drawn worker that does not answer by the deadline loses
 * the job to another draw; after `maxAttempts` draws the coordinator recomputes the span itself.
 */
import { randomUUID } from 'node:crypto';
import type { Hex } from 'viem';
import type { AuditJob, AuditReport } from '../protocol/http.ts';
import type { AnyTaskSpec } from '../protocol/index.ts';
import type { Db, Queryable } from './db.ts';
import { Refusal } from './errors.ts';
import { type AuditAnswer, type AuditSpan, answerConsistent } from './verification.ts';
import { WorkerSet } from './worker-set.ts';

export type JobState = 'open' | 'assigned' | 'matched' | 'mismatched' | 'cpu' | 'refuted';

export interface JobRow {
  job_id: string;
  task_id: Hex;
  from_step: number;
  to_step: number;
  validate: boolean;
  /** 'dispute': a side's part in a disputed job's bisection (see `parent`, ./audit.ts). */
  purpose: 'audit' | 're-execution' | 'dispute';
  report: AuditReport;
  /** The disputed job a 'dispute' job belongs to. */
  parent: string | null;
  expected: AuditAnswer;
  state: JobState;
  worker: string | null;
  excluded: string[];
  attempts: number;
  created_at: number;
  deadline: number | null;
  answer: AuditAnswer | null;
}

export interface AuditJobOptions {
  /** How long a drawn worker has to answer (it may be finishing a task first). */
  answerMs: number;
  /** Draws before the coordinator recomputes the span itself. */
  maxAttempts: number;
  /** A worker counts as available this long after it last asked for verification work. */
  seenWithinMs: number;
}

export const DEFAULT_AUDIT_JOBS: AuditJobOptions = { answerMs: 60_000, maxAttempts: 3, seenWithinMs: 60_000 };

interface Candidate {
  worker: string;
  audited: number;
  failures: number;
}

/** `row`'s span, as the verification rules take it. */
export function spanOf(row: Pick<JobRow, 'from_step' | 'to_step' | 'validate'>): AuditSpan {
  return { fromStep: row.from_step, toStep: row.to_step, validate: row.validate };
}

/**
 * One worker drawn from `candidates` (not excluded, never caught), with probability proportional to
 * its verified results; uniformly among them while none has any (a new network). Null: nobody.
 */
export function drawAuditor(candidates: readonly Candidate[], excluded: ReadonlySet<string>, u: number) {
  const eligible = candidates.filter((c) => c.failures === 0 && !excluded.has(c.worker));
  if (eligible.length === 0) return null;
  const total = eligible.reduce((n, c) => n + c.audited, 0);
  if (total === 0) return eligible[Math.min(eligible.length - 1, Math.floor(u * eligible.length))].worker;
  let left = u * total;
  for (const c of eligible) {
    left -= c.audited;
    if (left < 0) return c.worker;
  }
  return eligible.findLast((c) => c.audited > 0)!.worker;
}

export class AuditJobs {
  /** When this process last recorded each worker as available (the write is throttled). */
  private readonly noted = new Map<string, number>();
  private pool: { at: number; rows: Candidate[] } = { at: Number.NEGATIVE_INFINITY, rows: [] };
  /** Workers with a job drawn for them (every lease call with ?audits=1 asks). */
  private readonly assigned: WorkerSet;
  constructor(
    readonly db: Db,
    readonly opts: AuditJobOptions = DEFAULT_AUDIT_JOBS,
    readonly refreshMs = 250,
  ) {
    this.assigned = new WorkerSet(
      async () =>
        (
          await db.query<{ worker: string }>(
            `SELECT DISTINCT worker FROM audit_jobs WHERE state = 'assigned'`,
          )
        ).map((r) => r.worker),
      refreshMs,
    );
  }

  /** Records that `worker` takes verification work (at most one write per worker every 10 s). */
  async noteAuditor(worker: string): Promise<void> {
    const now = Date.now();
    if (now - (this.noted.get(worker) ?? Number.NEGATIVE_INFINITY) < 10_000) return;
    this.noted.set(worker, now);
    await this.db.query(
      `INSERT INTO auditors (worker, seen_at) VALUES ($1, $2)
       ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at`,
      [worker, now],
    );
  }

  /** The available workers with their records (cached for a second: every job creation reads it). */
  private async candidates(q: Queryable): Promise<Candidate[]> {
    const now = Date.now();
    if (now - this.pool.at > 1000) {
      const rows = await q.query<Candidate>(
        `SELECT a.worker, coalesce(t.audited, 0)::int AS audited, coalesce(t.failures, 0)::int AS failures
         FROM auditors a LEFT JOIN worker_trust t USING (worker) WHERE a.seen_at > $1`,
        [now - this.opts.seenWithinMs],
      );
      this.pool = { at: now, rows };
    }
    return this.pool.rows;
  }

  /** Creates the jobs for `spans` of a task and draws a worker for each (inside the caller's transaction). */
  async create(
    q: Queryable,
    taskId: Hex,
    spans: readonly (AuditSpan & { expected: AuditAnswer })[],
    purpose: JobRow['purpose'],
    excluded: readonly string[],
  ): Promise<void> {
    const candidates = await this.candidates(q);
    const now = Date.now();
    for (const span of spans) {
      const worker = drawAuditor(candidates, new Set(excluded), Math.random());
      if (worker) this.assigned.add(worker);
      await q.query(
        `INSERT INTO audit_jobs (job_id, task_id, from_step, to_step, validate, purpose, expected, state,
           worker, excluded, attempts, created_at, deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::jsonb, $11, $12, $13)`,
        [
          randomUUID(),
          taskId,
          span.fromStep,
          span.toStep,
          span.validate,
          purpose,
          JSON.stringify(span.expected),
          worker ? 'assigned' : 'open',
          worker,
          JSON.stringify(worker ? [...excluded, worker] : excluded),
          worker ? 1 : 0,
          now,
          worker ? now + this.opts.answerMs : null,
        ],
      );
    }
  }

  /**
   * Creates a dispute's job for one named side of `parent` (not drawn: the side must answer for
   * itself): report 'steps' over the parent's span, or 'state' up to the step where the sides part.
   * `expected`: what that side already answered, which its new answer must be consistent with.
   */
  async assign(
    q: Queryable,
    parent: JobRow,
    span: AuditSpan,
    report: 'steps' | 'state',
    worker: string,
    expected: AuditAnswer,
  ): Promise<void> {
    const now = Date.now();
    this.assigned.add(worker);
    await q.query(
      `INSERT INTO audit_jobs (job_id, task_id, from_step, to_step, validate, purpose, report, parent, expected,
         state, worker, excluded, attempts, created_at, deadline)
       VALUES ($1, $2, $3, $4, $5, 'dispute', $6, $7, $8::jsonb, 'assigned', $9, '[]'::jsonb, 1, $10, $11)`,
      [
        randomUUID(),
        parent.task_id,
        span.fromStep,
        span.toStep,
        span.validate,
        report,
        parent.job_id,
        JSON.stringify(expected),
        worker,
        now,
        now + this.opts.answerMs,
      ],
    );
  }

  /**
   * Puts a job whose worker was shown wrong (or went silent in its dispute) back to be drawn again,
   * and forgets its dispute's jobs. The worker stays excluded.
   */
  async reopen(q: Queryable, jobId: string): Promise<void> {
    await q.query('DELETE FROM audit_jobs WHERE parent = $1', [jobId]);
    await q.query(
      `UPDATE audit_jobs SET state = 'open', answer = NULL, deadline = NULL, worker = NULL WHERE job_id = $1`,
      [jobId],
    );
  }

  /**
   * Takes back the audit jobs drawn for a worker just shown wrong (it keeps its own disputes' jobs):
   * they are drawn again for others at once, instead of waiting for a proven liar's answers. It is
   * already in each job's `excluded`, and caught workers are never drawn.
   */
  async withdrawFrom(q: Queryable, worker: string): Promise<void> {
    await q.query(
      `UPDATE audit_jobs SET state = 'open', worker = NULL, deadline = NULL
       WHERE worker = $1 AND state = 'assigned' AND purpose <> 'dispute'`,
      [worker],
    );
  }

  /** The jobs of these tasks, oldest first. */
  async ofTasks(taskIds: readonly Hex[]): Promise<Map<Hex, JobRow[]>> {
    const out = new Map<Hex, JobRow[]>(taskIds.map((id) => [id, []]));
    if (taskIds.length === 0) return out;
    const rows = await this.db.query<JobRow>(
      'SELECT * FROM audit_jobs WHERE task_id = ANY($1::text[]) ORDER BY created_at, job_id',
      [taskIds],
    );
    for (const r of rows) out.get(r.task_id)?.push(r);
    return out;
  }

  /**
   * Draws again for jobs nobody holds: never drawn (nobody was available) or past their deadline.
   * Returns the jobs left for the coordinator's CPU: drawn `maxAttempts` times already, or with
   * nobody left to draw (a small network where every available worker held the task).
   */
  async redraw(jobs: readonly JobRow[]): Promise<JobRow[]> {
    const now = Date.now();
    const forCpu: JobRow[] = [];
    for (const job of jobs) {
      if (job.purpose === 'dispute') continue; // a side answers for itself: ./audit.ts reads its silence
      const late = job.state === 'assigned' && job.deadline !== null && job.deadline <= now;
      if (!late && job.state !== 'open') continue;
      const worker =
        job.attempts >= this.opts.maxAttempts
          ? null
          : drawAuditor(await this.candidates(this.db), new Set(job.excluded), Math.random());
      if (!worker) {
        forCpu.push(job);
        continue;
      }
      this.assigned.add(worker);
      await this.db.query(
        `UPDATE audit_jobs SET state = 'assigned', worker = $2, excluded = excluded || jsonb_build_array($2::text),
           attempts = attempts + 1, deadline = $3 WHERE job_id = $1 AND state IN ('open', 'assigned')`,
        [job.job_id, worker, now + this.opts.answerMs],
      );
    }
    return forCpu;
  }

  /**
   * Marks a job decided by the coordinator: 'cpu' (recomputed or refereed here) or 'refuted' (its
   * answer was wrong), and forgets its dispute's jobs.
   */
  async settle(q: Queryable, jobId: string, state: 'cpu' | 'refuted'): Promise<void> {
    await q.query('DELETE FROM audit_jobs WHERE parent = $1', [jobId]);
    await q.query('UPDATE audit_jobs SET state = $2 WHERE job_id = $1', [jobId, state]);
  }

  /** Forgets a decided task's jobs. */
  async close(q: Queryable, taskId: Hex): Promise<void> {
    await q.query('DELETE FROM audit_jobs WHERE task_id = $1', [taskId]);
  }

  /**
   * The oldest job drawn for `worker` that it may still answer, with the task's spec and the start
   * state (from the voters' upload), or null.
   */
  async jobFor(worker: string): Promise<AuditJob | null> {
    if (!(await this.assigned.mayHave(worker))) return null;
    const [row] = await this.db.query<{
      job_id: string;
      task_id: Hex;
      spec: AnyTaskSpec;
      from_step: number;
      to_step: number;
      validate: boolean;
      report: AuditReport;
      deadline: number;
      params: string | null;
      momentum: string | null;
    }>(
      `SELECT j.job_id, j.task_id, t.spec, j.from_step, j.to_step, j.validate, j.report, j.deadline, s.params,
         s.momentum
       FROM audit_jobs j JOIN tasks t ON t.task_id = j.task_id
       LEFT JOIN state_requests s ON s.task_id = j.task_id AND s.step = j.from_step
       WHERE j.worker = $1 AND j.state = 'assigned' AND j.deadline > $2
       ORDER BY j.created_at, j.job_id LIMIT 1`,
      [worker, Date.now()],
    );
    if (!row) return null;
    if (row.from_step > 0 && (!row.params || !row.momentum)) return null; // the audit pass made it: never
    return {
      kind: 'audit',
      jobId: row.job_id,
      taskId: row.task_id,
      spec: row.spec,
      fromStep: row.from_step,
      toStep: row.to_step,
      validate: row.validate,
      ...(row.report !== 'hash' && { report: row.report }),
      start: row.from_step > 0 ? { params: row.params!, momentum: row.momentum! } : null,
      deadline: row.deadline,
    };
  }

  /** Takes `worker`'s answer to a job drawn for it; compares it with the voters' claim (no CPU). */
  async answer(worker: string, jobId: string, answer: AuditAnswer): Promise<{ matched: boolean }> {
    const [row] = await this.db.query<JobRow>('SELECT * FROM audit_jobs WHERE job_id = $1', [jobId]);
    if (!row) throw new Refusal(404, 'no such audit job (it may have been decided already)');
    if (row.worker !== worker) throw new Refusal(403, 'this audit job was drawn for another worker');
    if (row.state !== 'assigned') throw new Refusal(409, 'this audit job was already answered');
    if (row.deadline !== null && row.deadline <= Date.now())
      throw new Refusal(409, 'this audit job passed its deadline and was drawn for another worker');
    if (row.validate && answer.weightsHash === undefined)
      throw new Refusal(422, 'this span validates: answer weightsHash, valCorrect, valCount and valLoss');
    const matched = answerConsistent(spanOf(row), row.report, row.expected, answer);
    const [updated] = await this.db.query<{ job_id: string }>(
      `UPDATE audit_jobs SET state = $3, answer = $4::jsonb, answered_at = $5
       WHERE job_id = $1 AND worker = $2 AND state = 'assigned' RETURNING job_id`,
      [jobId, worker, matched ? 'matched' : 'mismatched', JSON.stringify(answer), Date.now()],
    );
    if (!updated) throw new Refusal(409, 'this audit job was already answered');
    return { matched };
  }
}
