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
import { GroupCommit } from './group-commit.ts';

export interface QueueOptions {
  /** How long a lease lives without a heartbeat. */
  leaseMs: number;
  /** Votes one digest needs (the contract's minQuorum); it must also be more than half of all votes. */
  quorum: number;
  /** Replicas issued per task at first. */
  initialReplicas: number;
  /** Replicas a disagreement may grow to before the referee decides. */
  maxReplicas: number;
  /**
   * How long the referee waits for a voter to upload the agreed state before it recomputes from
   * step 0 (absent: 0, no waiting).
   */
  stateWaitMs?: number;
  /**
   * Group commit window: a lease or result batch starts at most this often, so that under light
   * load requests share transactions (absent: 0, a batch as soon as the previous one is done).
   */
  batchWindowMs?: number;
}

export const DEFAULT_QUEUE: QueueOptions = {
  leaseMs: 60_000,
  quorum: 2,
  initialReplicas: 2,
  maxReplicas: 4,
  stateWaitMs: 20_000,
  batchWindowMs: 2,
};

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

/** What a batch's votes did to a task: its state afterwards and the change to write, if any. */
interface Decision {
  state: TaskState;
  action?: 'agreed' | 'grow' | 'referee';
  digest?: Hex;
}

interface OpenTask {
  task_id: Hex;
  seq: number;
  open_slots: number;
  /** Which of the batch's workers hold a live lease on it. */
  held: string[];
}

interface TaskRow {
  task_id: Hex;
  state: TaskState;
  wanted: number;
  max_replicas: number;
}

interface LeaseRequest {
  session: Session;
}

interface Submission {
  session: Session;
  leaseId: string;
  result: TaskResult;
  voteSig: Hex;
  checkAgainstSpec: (spec: TaskSpec) => void;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Store {
  private readonly sessions = new Map<string, Session>();
  private readonly specs = new Map<Hex, TaskSpec>();

  private readonly leases: GroupCommit<LeaseRequest, Lease | null>;
  private readonly submissions: GroupCommit<Submission, TaskState>;

  constructor(
    readonly db: Db,
    readonly opts: QueueOptions = DEFAULT_QUEUE,
  ) {
    const window = opts.batchWindowMs ?? 0;
    this.leases = new GroupCommit(async (batch) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await db.tx((q) => this.leaseBatch(q, batch));
        } catch (err) {
          // Same worker leasing through two coordinators at once: the unique index caught it; pick again.
          if ((err as { code?: string }).code !== '23505' || attempt >= 2) throw err;
        }
      }
    }, window);
    this.submissions = new GroupCommit((batch) => db.tx((q) => this.writeBatch(q, batch)), window);
  }

  /** Queues a task (idempotent: the same spec is the same task). Returns its id, or null if it existed. */
  async addTask(spec: TaskSpec, proposal: unknown = null, q: Queryable = this.db): Promise<Hex | null> {
    const taskId = taskIdOf(spec);
    const { initialReplicas: n, maxReplicas } = this.opts;
    const rows = await q.query(
      `INSERT INTO tasks (task_id, spec, proposal, state, wanted, open_slots, max_replicas, created_at)
       VALUES ($1, $2::jsonb, $3::jsonb, 'open', $4, $4, $5, $6) ON CONFLICT (task_id) DO NOTHING RETURNING 1`,
      [taskId, JSON.stringify(spec), JSON.stringify(proposal), n, Math.max(n, maxReplicas), Date.now()],
    );
    this.specs.set(taskId, spec);
    return rows.length ? taskId : null;
  }

  async openTaskCount(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE state IN ('open', 'refereeing')`,
    );
    return row.n;
  }

  /** A task's spec: immutable, so cached (jsonb output is the costliest part of a small query). */
  async spec(taskId: Hex, q: Queryable = this.db): Promise<TaskSpec> {
    let spec = this.specs.get(taskId);
    if (!spec) {
      const [row] = await q.query<{ spec: string }>(
        'SELECT spec::text AS spec FROM tasks WHERE task_id = $1',
        [taskId],
      );
      spec = JSON.parse(row.spec) as TaskSpec;
      if (this.specs.size > 100_000) this.specs.clear();
      this.specs.set(taskId, spec);
    }
    return spec;
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

  /**
   * Leases one replica of the oldest open task this worker holds no replica of, or null.
   * Requests that arrive while a batch is being written are served together in the next
   * transaction (group commit): one `FOR UPDATE SKIP LOCKED` pick of open tasks, one insert of
   * leases, one update of free slots, however many workers asked.
   */
  lease(session: Session): Promise<Lease | null> {
    return this.leases.push({ session });
  }

  /**
   * One lease batch in two calls (PGlite spends a few hundred microseconds on any statement, so
   * statements per batch, not rows, bound throughput): pick and lock open tasks with the batch's
   * workers' live leases on them (again, further down the queue, only if some request is left
   * unserved); then insert the leases and take the slots.
   */
  private async leaseBatch(q: Queryable, batch: LeaseRequest[]): Promise<(Lease | null)[]> {
    const now = Date.now();
    const deadline = now + this.opts.leaseMs;
    const workers = [...new Set(batch.map((r) => r.session.worker))];
    const open: OpenTask[] = [];
    const taken = new Set<string>();
    const rows: { lease_id: string; task_id: Hex; worker: string; token_hash: string }[] = [];
    const out: ({ leaseId: string; taskId: Hex; deadline: number } | null)[] = batch.map(() => null);
    let first = 0; // tasks before this one have no free slot left
    // Lock a few more tasks than requests (a worker skips tasks it already holds); lock more only
    // when requests are still unserved and there may be more open tasks. Every locked row costs a
    // write, so locking a generous margin up front made a single lease several times dearer.
    for (let round = 0, lim = batch.length + 8; round < 8; round++, lim *= 2) {
      const more = await q.query<OpenTask>('SELECT * FROM queue_open_tasks($1, $2::text[], $3)', [
        lim,
        workers,
        open.at(-1)?.seq ?? -1,
      ]);
      for (const t of more) for (const w of t.held) taken.add(`${t.task_id}|${w}`);
      open.push(...more);
      batch.forEach(({ session }, r) => {
        if (out[r]) return;
        while (first < open.length && open[first].open_slots === 0) first++;
        let i = first;
        while (
          i < open.length &&
          (open[i].open_slots === 0 || taken.has(`${open[i].task_id}|${session.worker}`))
        )
          i++;
        if (i === open.length) return;
        const task = open[i];
        task.open_slots--;
        taken.add(`${task.task_id}|${session.worker}`);
        const leaseId = randomUUID();
        rows.push({
          lease_id: leaseId,
          task_id: task.task_id,
          worker: session.worker,
          token_hash: session.tokenHash,
        });
        out[r] = { leaseId, taskId: task.task_id, deadline };
      });
      if (more.length < lim || out.every(Boolean)) break;
    }
    if (rows.length === 0) return batch.map(() => null);
    await q.query('SELECT queue_insert_leases($1::jsonb, $2, $3)', [JSON.stringify(rows), now, deadline]);
    return Promise.all(out.map(async (l) => (l ? { ...l, spec: await this.spec(l.taskId, q) } : null)));
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
   * applies the agreement rule. Returns the task's state afterwards. Resolves after the vote is
   * committed. Submissions arriving while a batch is being written are written together in the
   * next transaction (group commit), so the database sees a few statements per batch, not per vote.
   */
  submit(
    session: Session,
    leaseId: string,
    result: TaskResult,
    voteSig: Hex,
    checkAgainstSpec: (spec: TaskSpec) => void = () => {},
  ): Promise<TaskState> {
    return this.submissions.push({ session, leaseId, result, voteSig, checkAgainstSpec });
  }

  /**
   * One transaction for a batch of submissions, in two calls: lock the tasks (sorted) and read
   * their leases and votes, then write every vote, lease and task change at once. Each item gets
   * its task's state or its refusal.
   */
  private async writeBatch(q: Queryable, batch: Submission[]): Promise<(TaskState | Refusal)[]> {
    const leaseIds = batch.map((b) => b.leaseId);
    // Lock order: tasks (sorted, so concurrent batches cannot deadlock), then leases. Lease states
    // change only under their task's lock, so reading them after taking the task locks (in the
    // function's next statement, with a fresh snapshot) is enough.
    const [{ read }] = await q.query<{
      read: {
        tasks: [Hex, TaskState, number, number][];
        leases: [string, Hex, string, string][];
        votes: [Hex, string, Hex][];
      };
    }>('SELECT queue_read_submissions($1::text[]) AS read', [leaseIds]);
    const tasks: TaskRow[] = read.tasks.map(([task_id, state, wanted, max_replicas]) => ({
      task_id,
      state,
      wanted,
      max_replicas,
    }));
    const leaseById = new Map(
      read.leases.map(([lease_id, task_id, worker, state]) => [lease_id, { task_id, worker, state }]),
    );
    const votes = read.votes.map(([task_id, worker, digest]) => ({ task_id, worker, digest }));
    const specs = new Map<Hex, TaskSpec>();
    for (const t of tasks) specs.set(t.task_id, await this.spec(t.task_id, q));
    const outcomes: (TaskState | Refusal | undefined)[] = [];
    const accepted: Submission[] = [];
    for (const item of batch) {
      const refusal = this.check(item, leaseById.get(item.leaseId), specs, votes);
      outcomes.push(refusal);
      if (refusal) continue;
      leaseById.get(item.leaseId)!.state = 'submitted'; // a second copy in this batch is a duplicate
      votes.push({
        task_id: item.result.taskId as Hex,
        worker: item.session.worker,
        digest: item.result.digest as Hex,
      });
      accepted.push(item);
    }
    // Only tasks that received a vote can change state.
    const touched = new Set(accepted.map((a) => a.result.taskId));
    const decisions = this.decideAll(
      tasks.filter((t) => touched.has(t.task_id)),
      votes,
    );
    if (accepted.length > 0) await this.writeDecisions(q, accepted, decisions);
    return batch.map((item, i) => outcomes[i] ?? decisions.get(item.result.taskId as Hex)!.state);
  }

  /** Why a submission is refused, or undefined if it is acceptable. */
  private check(
    item: Submission,
    lease: { task_id: Hex; worker: string; state: string } | undefined,
    specs: Map<Hex, TaskSpec>,
    votes: { task_id: Hex; worker: string }[],
  ): Refusal | undefined {
    if (!lease) return new Refusal(404, 'unknown lease');
    if (lease.worker !== item.session.worker) return new Refusal(403, 'lease belongs to another worker');
    if (lease.state === 'submitted')
      return new Refusal(409, 'duplicate submission: this lease already has a result');
    if (lease.state === 'expired') return new Refusal(409, 'stale lease: it expired and was reissued');
    if (lease.state === 'cancelled') return new Refusal(409, 'stale lease: the task was decided without it');
    if (lease.state !== 'active') return new Refusal(409, `lease is ${lease.state}`);
    if (lease.task_id !== item.result.taskId)
      return new Refusal(409, 'result is for another task than the lease');
    if (votes.some((v) => v.task_id === lease.task_id && v.worker === item.session.worker)) {
      return new Refusal(409, 'duplicate submission: this worker already voted on the task');
    }
    try {
      item.checkAgainstSpec(specs.get(lease.task_id)!);
    } catch (err) {
      return err instanceof Refusal ? err : new Refusal(422, String(err));
    }
    return undefined;
  }

  /** The agreement rule over every task of a batch (under their row locks). */
  private decideAll(tasks: TaskRow[], votes: { task_id: Hex; digest: Hex }[]): Map<Hex, Decision> {
    const decisions = new Map<Hex, Decision>();
    for (const task of tasks) {
      if (task.state !== 'open') {
        decisions.set(task.task_id, { state: task.state });
        continue;
      }
      const counts = new Map<Hex, number>();
      for (const v of votes)
        if (v.task_id === task.task_id) counts.set(v.digest, (counts.get(v.digest) ?? 0) + 1);
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const [topDigest, top] =
        [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0] ?? [];
      if (topDigest && top! >= this.opts.quorum && top! * 2 > total) {
        decisions.set(task.task_id, { state: 'agreed', action: 'agreed', digest: topDigest });
      } else if (total < task.wanted) {
        decisions.set(task.task_id, { state: 'open' });
      } else if (task.wanted < task.max_replicas) {
        // Split (or short of quorum): one more replica, from a worker who has not seen this task.
        decisions.set(task.task_id, { state: 'open', action: 'grow' });
      } else {
        decisions.set(task.task_id, { state: 'refereeing', action: 'referee' });
      }
    }
    return decisions;
  }

  /**
   * Writes a batch's accepted votes (each with its verdict) and what they decided in one call:
   * earlier votes of tasks agreed now get their verdicts, an agreed task takes its result from a
   * vote for the agreed digest, outstanding leases of decided tasks are cancelled.
   */
  private async writeDecisions(q: Queryable, accepted: Submission[], decisions: Map<Hex, Decision>) {
    const now = Date.now();
    const verdictOf = (taskId: Hex, digest: string) => {
      const d = decisions.get(taskId)!;
      return d.action === 'agreed' ? (digest === d.digest ? 'majority' : 'dissent') : 'pending';
    };
    const votes = accepted.map((item) => ({
      task_id: item.result.taskId,
      worker: item.session.worker,
      lease_id: item.leaseId,
      digest: item.result.digest,
      session_key: item.session.sessionKey,
      session_expiry: item.session.expiresAt,
      grant_sig: item.session.grantSig,
      vote_sig: item.voteSig,
      result: item.result,
      verdict: verdictOf(item.result.taskId as Hex, item.result.digest),
    }));
    const changes = [...decisions].flatMap(([task_id, d]) =>
      d.action ? [{ task_id, action: d.action, digest: d.digest ?? null }] : [],
    );
    const decided = changes.filter((c) => c.action !== 'grow').map((c) => c.task_id);
    await q.query('SELECT queue_write_votes($1::jsonb, $2::text[], $3::text[], $4::jsonb, $5)', [
      JSON.stringify(votes),
      votes.map((v) => v.lease_id),
      decided,
      JSON.stringify(changes),
      now,
    ]);
  }

  private async markAgreed(
    q: Queryable,
    agreed: { task_id: Hex; digest: Hex }[],
    how: 'majority' | 'referee',
  ) {
    const json = JSON.stringify(agreed);
    await q.query(
      `UPDATE tasks t SET state = 'agreed', agreed_digest = x.digest, agreed_at = $2, open_slots = 0,
              result = (SELECT v.result FROM votes v WHERE v.task_id = t.task_id AND v.digest = x.digest LIMIT 1)
       FROM jsonb_to_recordset($1::jsonb) AS x(task_id text, digest text) WHERE t.task_id = x.task_id`,
      [json, Date.now()],
    );
    await q.query(
      `UPDATE votes v SET verdict = CASE WHEN v.digest = x.digest THEN 'majority' ELSE $2 END
       FROM jsonb_to_recordset($1::jsonb) AS x(task_id text, digest text) WHERE v.task_id = x.task_id`,
      [json, how === 'majority' ? 'dissent' : 'wrong'],
    );
    await q.query(
      `UPDATE leases SET state = 'cancelled' WHERE task_id = ANY($1::text[]) AND state = 'active'`,
      [agreed.map((a) => a.task_id)],
    );
  }

  /** Marks the task agreed on `digest`; `how` says whether a majority or the referee decided. */
  async decide(q: Queryable, taskId: Hex, digest: Hex, how: 'majority' | 'referee'): Promise<void> {
    await this.markAgreed(q, [{ task_id: taskId, digest }], how);
  }
}
