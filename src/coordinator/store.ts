/**
 * The task queue in PostgreSQL: tasks, sessions, leases, votes and the agreement rule.
 *
 * Lock order is always task row, then lease rows, so concurrent leases, submissions and the
 * expiry sweep of several coordinator processes cannot deadlock in the common case (and a
 * transaction PostgreSQL aborts as a deadlock victim is retried by `Db.tx`).
 * Leasing picks the oldest open task with `FOR UPDATE SKIP LOCKED`: two coordinators never wait on
 * each other and never hand out one replica twice, because a task's free slots are counted on its
 * locked row, and the partial unique index `leases_live` forbids two live replicas of a task for one worker.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Hex } from 'viem';
import { type TaskResult, type TaskSpec, taskIdOf } from '../protocol/index.ts';
import type { Db, Queryable } from './db.ts';
import { Refusal } from './errors.ts';

export interface QueueOptions {
  /** How long a lease lives without a heartbeat. */
  leaseMs: number;
  /** Votes one digest needs (the contract's minQuorum); it must also be more than half of all votes. */
  quorum: number;
  /** Replicas issued per task at first. */
  initialReplicas: number;
  /** Replicas a disagreement may grow to before the referee decides. */
  maxReplicas: number;
}

export const DEFAULT_QUEUE: QueueOptions = { leaseMs: 60_000, quorum: 2, initialReplicas: 2, maxReplicas: 4 };

export interface Session {
  tokenHash: string;
  worker: Hex;
  sessionKey: Hex;
  /** Unix seconds, as signed in the SessionGrant. */
  expiresAt: number;
  grantSig: Hex;
}

export interface Lease {
  leaseId: string;
  taskId: Hex;
  spec: TaskSpec;
  /** Epoch milliseconds. */
  deadline: number;
}

export type TaskState = 'open' | 'agreed' | 'refereeing' | 'settling' | 'settled' | 'failed';

interface TaskRow {
  task_id: Hex;
  state: TaskState;
  wanted: number;
  max_replicas: number;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Store {
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly db: Db,
    readonly opts: QueueOptions = DEFAULT_QUEUE,
  ) {}

  /** Queues a task (idempotent: the same spec is the same task). Returns its id, or null if it existed. */
  async addTask(spec: TaskSpec, proposal: unknown = null, q: Queryable = this.db): Promise<Hex | null> {
    const taskId = taskIdOf(spec);
    const { initialReplicas: n, maxReplicas } = this.opts;
    const rows = await q.query(
      `INSERT INTO tasks (task_id, spec, proposal, state, wanted, open_slots, max_replicas, created_at)
       VALUES ($1, $2::jsonb, $3::jsonb, 'open', $4, $4, $5, $6) ON CONFLICT (task_id) DO NOTHING RETURNING 1`,
      [taskId, JSON.stringify(spec), JSON.stringify(proposal), n, Math.max(n, maxReplicas), Date.now()],
    );
    return rows.length ? taskId : null;
  }

  async openTaskCount(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE state IN ('open', 'refereeing')`,
    );
    return row.n;
  }

  // ---- sessions -------------------------------------------------------------------------------

  /** Stores a session whose grant the caller has verified; returns the bearer token (shown once). */
  async createSession(
    grant: { worker: Hex; sessionKey: Hex; expiresAt: number },
    grantSig: Hex,
  ): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const session: Session = { tokenHash: hashToken(token), ...grant, grantSig };
    await this.db.query(
      `INSERT INTO sessions (token_hash, worker, session_key, expires_at, grant_sig, created_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [session.tokenHash, grant.worker, grant.sessionKey, grant.expiresAt, grantSig, Date.now()],
    );
    this.sessions.set(session.tokenHash, session);
    return token;
  }

  async session(token: string | undefined): Promise<Session> {
    if (!token) throw new Refusal(401, 'missing bearer token: POST /sessions first');
    const tokenHash = hashToken(token);
    let session = this.sessions.get(tokenHash);
    if (!session) {
      const [row] = await this.db.query<{
        worker: Hex;
        session_key: Hex;
        expires_at: number;
        grant_sig: Hex;
      }>('SELECT worker, session_key, expires_at, grant_sig FROM sessions WHERE token_hash = $1', [
        tokenHash,
      ]);
      if (!row) throw new Refusal(401, 'unknown session token');
      session = {
        tokenHash,
        worker: row.worker,
        sessionKey: row.session_key,
        expiresAt: row.expires_at,
        grantSig: row.grant_sig,
      };
      this.sessions.set(tokenHash, session);
    }
    if (session.expiresAt * 1000 <= Date.now()) throw new Refusal(401, 'session expired: sign a new grant');
    return session;
  }

  // ---- leases ---------------------------------------------------------------------------------

  /** Leases one replica of the oldest open task this worker holds no replica of, or null. */
  async lease(session: Session): Promise<Lease | null> {
    const now = Date.now();
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await this.db.tx(async (q) => {
          const [task] = await q.query<{ task_id: Hex; spec: TaskSpec }>(
            `SELECT task_id, spec FROM tasks t
             WHERE state = 'open' AND open_slots > 0
               AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.task_id AND l.worker = $1
                               AND l.state IN ('active', 'submitted'))
             ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED`,
            [session.worker],
          );
          if (!task) return null;
          const lease: Lease = {
            leaseId: randomUUID(),
            taskId: task.task_id,
            spec: task.spec,
            deadline: now + this.opts.leaseMs,
          };
          await q.query('UPDATE tasks SET open_slots = open_slots - 1 WHERE task_id = $1', [task.task_id]);
          await q.query(
            `INSERT INTO leases (lease_id, task_id, worker, token_hash, state, issued_at, deadline)
             VALUES ($1, $2, $3, $4, 'active', $5, $6)`,
            [lease.leaseId, lease.taskId, session.worker, session.tokenHash, now, lease.deadline],
          );
          return lease;
        });
      } catch (err) {
        // Same worker leasing through two coordinators at once: the unique index caught it; pick again.
        if ((err as { code?: string }).code !== '23505') throw err;
      }
    }
    return null;
  }

  /** Extends a live lease. Refuses (409) a lease that expired or whose task was decided without it. */
  async heartbeat(session: Session, leaseId: string, progress: unknown): Promise<number> {
    const deadline = Date.now() + this.opts.leaseMs;
    const rows = await this.db.query<{ deadline: number }>(
      `UPDATE leases SET deadline = $3, heartbeat_at = $4, progress = $5::jsonb
       WHERE lease_id = $1 AND worker = $2 AND state = 'active' RETURNING deadline`,
      [leaseId, session.worker, deadline, Date.now(), JSON.stringify(progress ?? null)],
    );
    if (rows.length === 0) throw await this.leaseRefusal(this.db, session, leaseId);
    return deadline;
  }

  /** Gives a lease back (the worker stops); its slot is reissued at once. */
  async release(session: Session, leaseId: string): Promise<void> {
    await this.db.tx(async (q) => {
      const lease = await this.lockLease(q, session, leaseId);
      await q.query(`UPDATE leases SET state = 'released' WHERE lease_id = $1`, [leaseId]);
      await q.query(`UPDATE tasks SET open_slots = open_slots + 1 WHERE task_id = $1 AND state = 'open'`, [
        lease.task_id,
      ]);
    });
  }

  private async leaseRefusal(q: Queryable, session: Session, leaseId: string): Promise<Refusal> {
    const [row] = await q.query<{ worker: string; state: string }>(
      'SELECT worker, state FROM leases WHERE lease_id = $1',
      [leaseId],
    );
    if (!row) return new Refusal(404, 'unknown lease');
    if (row.worker !== session.worker) return new Refusal(403, 'lease belongs to another worker');
    if (row.state === 'submitted')
      return new Refusal(409, 'duplicate submission: this lease already has a result');
    if (row.state === 'expired') return new Refusal(409, 'stale lease: it expired and was reissued');
    if (row.state === 'cancelled') return new Refusal(409, 'stale lease: the task was decided without it');
    return new Refusal(409, `lease is ${row.state}`);
  }

  /** Locks task then lease (the global lock order) and checks the lease is this session's and active. */
  private async lockLease(q: Queryable, session: Session, leaseId: string): Promise<{ task_id: Hex }> {
    const [peek] = await q.query<{ task_id: Hex }>('SELECT task_id FROM leases WHERE lease_id = $1', [
      leaseId,
    ]);
    if (!peek) throw new Refusal(404, 'unknown lease');
    await q.query('SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE', [peek.task_id]);
    const [lease] = await q.query<{ task_id: Hex; worker: string; state: string }>(
      'SELECT task_id, worker, state FROM leases WHERE lease_id = $1 FOR UPDATE',
      [leaseId],
    );
    if (lease.worker !== session.worker || lease.state !== 'active')
      throw await this.leaseRefusal(q, session, leaseId);
    return lease;
  }

  /** Marks leases past their deadline expired and reopens their slots. Returns how many expired. */
  async expireLeases(now = Date.now()): Promise<number> {
    const due = await this.db.query<{ task_id: Hex }>(
      `SELECT DISTINCT task_id FROM leases WHERE state = 'active' AND deadline < $1`,
      [now],
    );
    let expired = 0;
    for (const { task_id } of due) {
      expired += await this.db.tx(async (q) => {
        const [task] = await q.query<{ state: string }>(
          'SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE',
          [task_id],
        );
        const [{ n }] = await q.query<{ n: number }>(
          `WITH e AS (UPDATE leases SET state = 'expired'
                      WHERE task_id = $1 AND state = 'active' AND deadline < $2 RETURNING 1)
           SELECT count(*)::int AS n FROM e`,
          [task_id, now],
        );
        if (n > 0 && task.state === 'open') {
          await q.query('UPDATE tasks SET open_slots = open_slots + $2 WHERE task_id = $1', [task_id, n]);
        }
        return n;
      });
    }
    return expired;
  }

  // ---- results --------------------------------------------------------------------------------

  /**
   * Records a vote whose signature the caller has verified against `session.sessionKey`, then
   * applies the agreement rule. Returns the task's state afterwards.
   */
  async submit(
    session: Session,
    leaseId: string,
    result: TaskResult,
    voteSig: Hex,
    checkAgainstSpec: (spec: TaskSpec) => void = () => {},
  ): Promise<TaskState> {
    return this.db.tx(async (q) => {
      const lease = await this.lockLease(q, session, leaseId);
      if (lease.task_id !== result.taskId)
        throw new Refusal(409, 'result is for another task than the lease');
      const [{ spec }] = await q.query<{ spec: TaskSpec }>('SELECT spec FROM tasks WHERE task_id = $1', [
        lease.task_id,
      ]);
      checkAgainstSpec(spec);
      await q.query(`UPDATE leases SET state = 'submitted' WHERE lease_id = $1`, [leaseId]);
      const inserted = await q.query(
        `INSERT INTO votes (task_id, worker, lease_id, digest, session_key, session_expiry, grant_sig, vote_sig,
                            result, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) ON CONFLICT DO NOTHING RETURNING 1`,
        [
          result.taskId,
          session.worker,
          leaseId,
          result.digest,
          session.sessionKey,
          session.expiresAt,
          session.grantSig,
          voteSig,
          JSON.stringify(result),
          Date.now(),
        ],
      );
      if (inserted.length === 0)
        throw new Refusal(409, 'duplicate submission: this worker already voted on the task');
      return this.evaluate(q, result.taskId);
    });
  }

  /** The agreement rule, under the task's row lock. */
  private async evaluate(q: Queryable, taskId: Hex): Promise<TaskState> {
    const [task] = await q.query<TaskRow>(
      'SELECT task_id, state, wanted, max_replicas FROM tasks WHERE task_id = $1 FOR UPDATE',
      [taskId],
    );
    if (task.state !== 'open') return task.state;
    const groups = await q.query<{ digest: Hex; n: number }>(
      'SELECT digest, count(*)::int AS n FROM votes WHERE task_id = $1 GROUP BY digest ORDER BY n DESC, digest',
      [taskId],
    );
    const total = groups.reduce((s, g) => s + g.n, 0);
    const top = groups[0];
    if (top.n >= this.opts.quorum && top.n * 2 > total) {
      await this.decide(q, taskId, top.digest, 'majority');
      return 'agreed';
    }
    if (total < task.wanted) return 'open';
    if (task.wanted < task.max_replicas) {
      // Split (or short of quorum): one more replica, from a worker who has not seen this task.
      await q.query('UPDATE tasks SET wanted = wanted + 1, open_slots = open_slots + 1 WHERE task_id = $1', [
        taskId,
      ]);
      return 'open';
    }
    await q.query(`UPDATE tasks SET state = 'refereeing', open_slots = 0 WHERE task_id = $1`, [taskId]);
    await this.cancelLiveLeases(q, taskId);
    return 'refereeing';
  }

  /** Marks the task agreed on `digest`; `how` says whether a majority or the referee decided. */
  async decide(q: Queryable, taskId: Hex, digest: Hex, how: 'majority' | 'referee'): Promise<void> {
    const [vote] = await q.query<{ result: TaskResult }>(
      'SELECT result FROM votes WHERE task_id = $1 AND digest = $2 LIMIT 1',
      [taskId, digest],
    );
    await q.query(
      `UPDATE tasks SET state = 'agreed', agreed_digest = $2, agreed_at = $3, result = $4::jsonb, open_slots = 0
       WHERE task_id = $1`,
      [taskId, digest, Date.now(), JSON.stringify(vote.result)],
    );
    const loser = how === 'majority' ? 'dissent' : 'wrong';
    await q.query(
      `UPDATE votes SET verdict = CASE WHEN digest = $2 THEN 'majority' ELSE $3 END WHERE task_id = $1`,
      [taskId, digest, loser],
    );
    await this.cancelLiveLeases(q, taskId);
  }

  private async cancelLiveLeases(q: Queryable, taskId: Hex): Promise<void> {
    await q.query(`UPDATE leases SET state = 'cancelled' WHERE task_id = $1 AND state = 'active'`, [taskId]);
  }
}
