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
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { Hex } from 'viem';
import { specCounts } from '../nas/spaces.ts';
import { type AnyTaskSpec, type TaskResult, taskIdOf } from '../protocol/index.ts';
import type { Db, Queryable } from './db.ts';
import { Refusal } from './errors.ts';
import { GroupCommit } from './group-commit.ts';
import {
  afterFailure,
  afterPass,
  agreement,
  DEFAULT_STRAGGLER,
  DEFAULT_TRUST,
  isTrusted,
  leaseCapFor,
  NEW_WORKER,
  replicasFor,
  type StragglerParams,
  type TrustParams,
  type TrustRecord,
  typicalMsPerStep,
} from './verification.ts';

export interface QueueOptions {
  /** How long a lease lives without a heartbeat. */
  leaseMs: number;
  /** Votes one digest needs (the contract's minQuorum); it must also be more than half of all votes. */
  quorum: number;
  /** Replicas issued per task at first. */
  initialReplicas: number;
  /** Most votes a task may collect (a failed audit reopens it for a fresh replica) before it fails. */
  maxReplicas: number;
  /**
   * Most votes once the task's true digest is known (absent: 3 × maxReplicas). A wrong vote can then
   * win nothing and only costs its voter trust, so the task keeps reopening for a replica that can
   * match the truth instead of failing at `maxReplicas`: a cabal that grabs every reissued replica
   * would otherwise fail the task (lost work for the search).
   */
  maxVotesWithTruth?: number;
  /**
   * Longest a lease lives, whatever its heartbeats (absent: 30 × leaseMs): a lease cannot be held
   * forever to starve others.
   */
  maxLeaseMs?: number;
  /**
   * How long a lease that ended without a vote (released or expired) keeps its task from that worker
   * (absent: 5 × leaseMs). Not forever: in a small network the workers who held a task and lost their
   * lease (a coordinator restart, a laptop asleep) may be the only ones left to finish it; a vote
   * keeps the task from its worker for good.
   */
  heldCooldownMs?: number;
  /** When a running lease is reissued before its deadline (absent: DEFAULT_STRAGGLER). */
  straggler?: StragglerParams;
  /** Live leases one worker may hold at once (absent: 2). */
  maxLiveLeases?: number;
  /** Sessions one worker keeps; opening more evicts its oldest (absent: 4). */
  maxSessionsPerWorker?: number;
  /**
   * Votes for the referee's digest before it is decided (absent: 1, the Settlement v2 rule: the
   * referee's verdict settles a single vote). With the v1 contract, set it to the quorum: the task
   * then collects fresh replicas, which can only match the known digest or be wrong.
   */
  refereeQuorum?: number;
  /** Adaptive replication (src/coordinator/verification.ts; absent: DEFAULT_TRUST). */
  trust?: TrustParams;
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

/** Whose work a task is: the search it belongs to (null: the coordinator's own task). */
export interface LeaseSearch {
  id: Hex;
  sponsor: Hex;
  name: string;
  /** Wei, decimal. */
  rewardPerTask: string;
}

export interface Lease {
  leaseId: string;
  taskId: Hex;
  spec: AnyTaskSpec;
  /** Epoch milliseconds. */
  deadline: number;
  search: LeaseSearch | null;
}

/**
 * One search as leasing sees it (refreshed every SNAPSHOT_MS): its terms, how many fresh tasks it can
 * still pay for (`room`), whether it may lease at all, and the mean work of its open tasks.
 */
interface SearchSnapshot {
  search: LeaseSearch;
  state: string;
  room: number;
  leaseUntil: number | null;
  meanWork: number | null;
}

/** How stale the leasing snapshot of searches may be (a change in this process refreshes it at once). */
const SNAPSHOT_MS = 250;
/** The group key of the coordinator's own tasks (search_id NULL). */
const OWN = '';

export type TaskState = 'open' | 'auditing' | 'agreed' | 'refereeing' | 'settling' | 'settled' | 'failed';

/** What a batch's votes did to a task: its state afterwards and the change to write, if any. */
interface Decision {
  state: TaskState;
  action?: 'audit' | 'referee';
}

interface OpenTask {
  task_id: Hex;
  open_slots: number;
  /** Which of the batch's workers hold it, voted on it or lost a lease on it within the cooldown. */
  held: string[];
  /**
   * Nobody ever leased it: it may run as a single replica for a trusted worker, and leasing it
   * reserves its reward against its search's pool.
   */
  fresh: boolean;
  /** Its search ('' for the coordinator's own tasks). */
  group: string;
}

/** Live leases per worker beyond which the lease route answers 429 (absent option). */
export const DEFAULT_MAX_LIVE_LEASES = 2;

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
  checkAgainstSpec: (spec: AnyTaskSpec) => void;
}

/** A uniformly random permutation (Fisher–Yates over crypto randomness). */
function shuffled<T>(items: T[]): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * Training multiply-accumulates of a task: steps × batch × forward MACs per example (the backward
 * pass is about twice that again, the same for every task, so it does not change a comparison).
 */
export function taskWork(spec: AnyTaskSpec): number {
  return (specCounts(spec).flops / 2) * spec.training.steps * spec.training.batch;
}

/**
 * The lottery weight of each search's tasks (docs/COORDINATOR.md, "Leasing across searches"): its
 * reward per unit of work (wei per training MAC of its open tasks), so a volunteer's expected pay per
 * unit of compute is what the sponsors offer, a sponsor who pays more per unit of work gets
 * proportionally more workers, and every search that can pay gets some (no starvation, no steering:
 * the draw is random). The coordinator's own tasks weigh as much as the best-paying search.
 */
export function searchWeights(searches: Map<string, SearchSnapshot>): Map<string, number> {
  const weights = new Map<string, number>();
  for (const [id, s] of searches) {
    const reward = Number(s.search.rewardPerTask);
    weights.set(id, reward > 0 ? reward / Math.max(1, s.meanWork ?? 1) : 0);
  }
  const best = Math.max(0, ...weights.values());
  weights.set(OWN, best > 0 ? best : 1);
  return weights;
}

/** Tasks to sample per search for a batch of n requests: twice its expected share, at least 8. */
function sampleSizes(weights: Map<string, number>, n: number): Record<string, number> {
  const total = [...weights.values()].reduce((a, b) => a + b, 0);
  const sizes: Record<string, number> = {};
  for (const [id, w] of weights) sizes[id] = Math.ceil((2 * n * w) / (total || 1)) + 8;
  return sizes;
}

/**
 * A search drawn with probability proportional to its weight among those with an eligible task,
 * then one of its eligible tasks uniformly (crypto randomness). A search the snapshot does not know
 * yet (just created elsewhere) weighs as the coordinator's own tasks.
 */
function drawTask(eligible: OpenTask[], weights: Map<string, number>): OpenTask | undefined {
  if (eligible.length === 0) return undefined;
  const groups = new Map<string, OpenTask[]>();
  for (const t of eligible) groups.set(t.group, [...(groups.get(t.group) ?? []), t]);
  const keys = [...groups.keys()];
  const w = keys.map((k) => weights.get(k) ?? weights.get(OWN) ?? 1);
  const total = w.reduce((a, b) => a + b, 0);
  let x = (randomInt(2 ** 47) / 2 ** 47) * total;
  let pick = keys[keys.length - 1];
  for (const [i, k] of keys.entries()) {
    if (x < w[i]) {
      pick = k;
      break;
    }
    x -= w[i];
  }
  const tasks = groups.get(pick)!;
  return tasks[randomInt(tasks.length)];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Store {
  private readonly sessions = new Map<string, Session>();
  private readonly specs = new Map<Hex, AnyTaskSpec>();
  private snapshot?: { at: number; searches: Map<string, SearchSnapshot> };
  private snapshotLoading?: Promise<Map<string, SearchSnapshot>>;

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

  /**
   * Queues a task (idempotent: the same spec is the same task) for `searchId` (absent: the
   * coordinator's own). Returns its id, or null if it existed.
   */
  async addTask(
    spec: AnyTaskSpec,
    proposal: unknown = null,
    q: Queryable = this.db,
    searchId: Hex | null = null,
  ): Promise<Hex | null> {
    const taskId = taskIdOf(spec);
    const { initialReplicas: n, maxReplicas } = this.opts;
    const rows = await q.query(
      `INSERT INTO tasks (task_id, spec, proposal, state, wanted, open_slots, max_replicas, created_at, search_id, work)
       VALUES ($1, $2::jsonb, $3::jsonb, 'open', $4, $4, $5, $6, $7, $8) ON CONFLICT (task_id) DO NOTHING RETURNING 1`,
      [
        taskId,
        JSON.stringify(spec),
        JSON.stringify(proposal),
        n,
        Math.max(n, maxReplicas),
        Date.now(),
        searchId,
        taskWork(spec),
      ],
    );
    this.specs.set(taskId, spec);
    return rows.length ? taskId : null;
  }

  /** Forgets the leasing snapshot of searches (a search changed state or funds in this process). */
  searchesChanged(): void {
    this.snapshot = undefined;
  }

  /** The leasing snapshot of searches, at most SNAPSHOT_MS old. */
  private async searchSnapshot(q: Queryable): Promise<Map<string, SearchSnapshot>> {
    const now = Date.now();
    if (this.snapshot && now - this.snapshot.at < SNAPSHOT_MS) return this.snapshot.searches;
    if (this.snapshotLoading) return this.snapshotLoading;
    this.snapshotLoading = (async () => {
      const [{ snap }] = await q.query<{
        snap: [Hex, Hex, string, string, string, string, number | null, number | null][];
      }>('SELECT queue_search_snapshot($1) AS snap', [now]);
      const searches = new Map<string, SearchSnapshot>();
      for (const [id, sponsor, name, state, reward, room, leaseUntil, meanWork] of snap) {
        searches.set(id, {
          search: { id, sponsor, name, rewardPerTask: reward },
          state,
          room: Number(room),
          leaseUntil,
          meanWork,
        });
      }
      this.snapshot = { at: now, searches };
      return searches;
    })().finally(() => {
      this.snapshotLoading = undefined;
    });
    return this.snapshotLoading;
  }

  async openTaskCount(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE state IN ('open', 'refereeing')`,
    );
    return row.n;
  }

  /** A task's spec: immutable, so cached (jsonb output is the costliest part of a small query). */
  async spec(taskId: Hex, q: Queryable = this.db): Promise<AnyTaskSpec> {
    let spec = this.specs.get(taskId);
    if (!spec) {
      const [row] = await q.query<{ spec: string }>(
        'SELECT spec::text AS spec FROM tasks WHERE task_id = $1',
        [taskId],
      );
      spec = JSON.parse(row.spec) as AnyTaskSpec;
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
    // A worker keeps its few newest sessions: opening thousands cannot grow the table or the cache.
    const evicted = await this.db.query<{ token_hash: string }>(
      `DELETE FROM sessions WHERE token_hash IN (
         SELECT token_hash FROM sessions WHERE worker = $1 ORDER BY seq DESC OFFSET $2)
       RETURNING token_hash`,
      [grant.worker, this.opts.maxSessionsPerWorker ?? 4],
    );
    for (const e of evicted) this.sessions.delete(e.token_hash);
    return token;
  }

  /** Deletes sessions whose grant expired (the sweep calls it); returns how many. */
  async evictExpiredSessions(now = Date.now()): Promise<number> {
    const evicted = await this.db.query<{ token_hash: string }>(
      'DELETE FROM sessions WHERE expires_at * 1000 <= $1 RETURNING token_hash',
      [now],
    );
    for (const e of evicted) this.sessions.delete(e.token_hash);
    for (const [hash, session] of this.sessions)
      if (session.expiresAt * 1000 <= now) this.sessions.delete(hash);
    return evicted.length;
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
      if (!row) throw new Refusal(401, 'unknown or evicted session token: POST /sessions again');
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
   * Leases one replica of a random open task this worker does not hold, never voted on and did not
   * lose within `heldCooldownMs`, or null; a worker at its cap
   * of live leases is refused (429). Requests that arrive while a batch is being written are served
   * together in the next transaction (group commit), matched to tasks at random, so that requesting
   * at the same instant as an accomplice, releasing and re-leasing, or holding many keys gives no
   * better pairing than chance (docs/TRUST.md).
   */
  lease(session: Session): Promise<Lease | null> {
    return this.leases.push({ session });
  }

  /**
   * One lease batch in two calls: lock a random sample of each search's open tasks (with which of the
   * batch's workers hold, voted on or recently lost each, the workers' live leases and trust), then
   * insert the leases and take the slots, refusing the fresh tasks a search cannot pay for (under its
   * row lock). The sample holds more tasks than requests, so requests of one batch rarely meet on a
   * task. Each request draws a search by lottery (`searchWeights`), then a random task of it.
   */
  private async leaseBatch(q: Queryable, batch: LeaseRequest[]): Promise<(Lease | null | Refusal)[]> {
    const now = Date.now();
    const deadline = now + this.opts.leaseMs;
    const workers = [...new Set(batch.map((r) => r.session.worker))];
    const searches = await this.searchSnapshot(q);
    const room = new Map([...searches].map(([id, s]) => [id, s.room]));
    const weights = searchWeights(searches);
    const noFresh = [...searches].filter(([, s]) => s.room <= 0).map(([id]) => id);
    const noLease = [...searches]
      .filter(([, s]) => s.leaseUntil !== null && now >= s.leaseUntil)
      .map(([id]) => id);
    const [{ read }] = await q.query<{
      read: {
        tasks: [Hex, number, string[], boolean, string][];
        live: [string, number][];
        trust: [string, number, number][];
      };
    }>(
      'SELECT queue_lease_candidates_by_search($1::jsonb, $2, $3::text[], $4, $5::text[], $6::text[]) AS read',
      [
        JSON.stringify(sampleSizes(weights, batch.length)),
        batch.length * 2 + 32,
        workers,
        now - (this.opts.heldCooldownMs ?? 5 * this.opts.leaseMs),
        noFresh,
        noLease,
      ],
    );
    const open: OpenTask[] = read.tasks.map(([task_id, open_slots, held, fresh, group]) => ({
      task_id,
      open_slots,
      held,
      fresh,
      group,
    }));
    const live = new Map(read.live);
    const trust = new Map(read.trust.map(([w, audited, failures]) => [w, { audited, failures }]));
    const taken = new Set(open.flatMap((t) => t.held.map((w) => `${t.task_id}|${w}`)));
    const maxCap = this.opts.maxLiveLeases ?? DEFAULT_MAX_LIVE_LEASES;
    const bonded = await this.bondedAmong(
      read.trust.map(([w]) => w),
      trust,
    );
    const rows: {
      lease_id: string;
      task_id: Hex;
      worker: string;
      token_hash: string;
      single: boolean;
      ord: number;
    }[] = [];
    const out: (Omit<Lease, 'spec'> | null | Refusal)[] = batch.map(() => null);
    for (const r of shuffled(batch.map((_, i) => i))) {
      const { worker, tokenHash } = batch[r].session;
      const record = trust.get(worker) ?? NEW_WORKER;
      // A new (or caught) key holds one lease: a Sybil's many keys hold one each, not maxCap each.
      const cap = leaseCapFor(record, maxCap, this.trustParams);
      if ((live.get(worker) ?? 0) >= cap) {
        out[r] = new Refusal(
          429,
          cap < maxCap
            ? `a worker holds one live lease until ${this.trustParams.establishAfter} of its results are verified: submit or release it first`
            : `at most ${cap} live leases per worker: submit or release one first`,
          Math.ceil(this.opts.leaseMs / 1000),
        );
        continue;
      }
      const eligible = open.filter(
        (t) =>
          t.open_slots > 0 &&
          !taken.has(`${t.task_id}|${worker}`) &&
          (!t.fresh || t.group === OWN || (room.get(t.group) ?? 0) > 0),
      );
      const task = drawTask(eligible, weights);
      if (!task) continue;
      // Drawn here, unseen by the worker: a trusted worker's fresh task may run as one replica.
      const single =
        task.fresh &&
        replicasFor(
          record,
          this.opts.initialReplicas,
          Math.random(),
          this.trustParams,
          bonded.has(worker),
        ) === 1;
      if (task.fresh && task.group !== OWN) room.set(task.group, (room.get(task.group) ?? 0) - 1);
      task.open_slots = single ? 0 : task.open_slots - 1;
      task.fresh = false;
      taken.add(`${task.task_id}|${worker}`);
      live.set(worker, (live.get(worker) ?? 0) + 1);
      const leaseId = randomUUID();
      rows.push({
        lease_id: leaseId,
        task_id: task.task_id,
        worker,
        token_hash: tokenHash,
        single,
        ord: rows.length,
      });
      const search = task.group === OWN ? null : (searches.get(task.group)?.search ?? null);
      out[r] = { leaseId, taskId: task.task_id, deadline, search };
    }
    if (rows.length === 0) return out as (null | Refusal)[];
    const [{ refused }] = await q.query<{ refused: string[] }>(
      'SELECT queue_insert_leases_funded($1::jsonb, $2, $3) AS refused',
      [JSON.stringify(rows), now, deadline],
    );
    // Another coordinator leased the last tasks a search could pay for: those requests get no work now.
    if (refused.length > 0) {
      this.searchesChanged();
      const gone = new Set(refused);
      for (const [i, l] of out.entries())
        if (l && !(l instanceof Refusal) && gone.has(l.leaseId)) out[i] = null;
    }
    return Promise.all(
      out.map(async (l) => (l && !(l instanceof Refusal) ? { ...l, spec: await this.spec(l.taskId, q) } : l)),
    );
  }

  get trustParams(): TrustParams {
    return this.opts.trust ?? DEFAULT_TRUST;
  }

  /**
   * Where single-replica trust needs a bond: which of these workers hold at least the bond on chain
   * (./bonds.ts `BondBook`, set by the service when it has a chain). A store without one (no chain:
   * tests and benches without a contract) treats every worker as bonded.
   */
  bondCheck?: (workers: string[]) => Promise<Set<string>>;

  /** Which of `workers` count as bonded; asked only for those whose record would make them trusted. */
  private async bondedAmong(workers: string[], trust: Map<string, TrustRecord>): Promise<Set<string>> {
    const candidates = workers.filter((w) => isTrusted(trust.get(w) ?? NEW_WORKER, this.trustParams));
    if (!this.bondCheck || candidates.length === 0) return new Set(candidates);
    return this.bondCheck(candidates);
  }

  /** Extends a live lease. Refuses (409) a lease that expired or whose task was decided without it. */
  async heartbeat(session: Session, leaseId: string, progress: unknown): Promise<number> {
    const deadline = Date.now() + this.opts.leaseMs;
    // Never past the lease's maximum lifetime, however often it beats.
    const rows = await this.db.query<{ deadline: number }>(
      `UPDATE leases SET deadline = LEAST($3, issued_at + $6), heartbeat_at = $4, progress = $5::jsonb
       WHERE lease_id = $1 AND worker = $2 AND state = 'active' RETURNING deadline`,
      [leaseId, session.worker, deadline, Date.now(), JSON.stringify(progress ?? null), this.maxLeaseMs],
    );
    if (rows.length === 0) throw await this.leaseRefusal(this.db, session, leaseId);
    return deadline;
  }

  get maxLeaseMs(): number {
    return this.opts.maxLeaseMs ?? 30 * this.opts.leaseMs;
  }

  /** Gives a lease back (the worker stops); its slot is reissued at once, to another worker. */
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

  /** The typical ms per training step of recent voted leases (verification.ts), re-read every 10 s. */
  private typical = { at: Number.NEGATIVE_INFINITY, msPerStep: null as number | null };

  private async typicalStepMs(): Promise<number | null> {
    // Cached by the wall clock, not by the sweep's `now` (tests pass one in the future).
    const now = Date.now();
    if (now - this.typical.at < 10_000) return this.typical.msPerStep;
    const rows = await this.db.query<{ ms: number }>(
      `SELECT (v.received_at - l.issued_at) / (t.spec->'training'->>'steps')::float8 AS ms
       FROM votes v JOIN leases l ON l.task_id = v.task_id AND l.worker = v.worker AND l.state = 'submitted'
       JOIN tasks t ON t.task_id = v.task_id
       ORDER BY v.received_at DESC LIMIT 200`,
    );
    const params = this.opts.straggler ?? DEFAULT_STRAGGLER;
    this.typical = {
      at: now,
      msPerStep: typicalMsPerStep(
        rows.map((r) => r.ms),
        params,
      ),
    };
    return this.typical.msPerStep;
  }

  /**
   * Marks leases past their deadline expired, and stragglers too (running past `factor` × the
   * typical time for their task's steps: verification.ts `stragglerAfterMs`), and reopens their
   * slots. Returns how many expired.
   */
  async expireLeases(now = Date.now()): Promise<number> {
    const params = this.opts.straggler ?? DEFAULT_STRAGGLER;
    const msPerStep = await this.typicalStepMs();
    // Per lease (l, its task t): past its deadline, or, once the typical time is known, running past
    // the straggler limit: verification.ts `stragglerAfterMs`, written here in SQL so that the sweep
    // reads only the leases it expires. `$p` holds `now`; $p+1..$p+3 the typical ms, factor and floor.
    const overdue = (p: number) =>
      `(l.deadline < $${p} OR ($${p + 1}::float8 IS NOT NULL AND $${p} - l.issued_at > greatest($${p + 3}::float8,
         $${p + 2}::float8 * $${p + 1}::float8 * (t.spec->'training'->>'steps')::float8)))`;
    const args = [now, msPerStep, params.factor, params.floorMs];
    const due = await this.db.query<{ task_id: Hex }>(
      `SELECT DISTINCT l.task_id FROM leases l JOIN tasks t USING (task_id)
       WHERE l.state = 'active' AND ${overdue(1)}`,
      args,
    );
    let expired = 0;
    for (const { task_id } of due) {
      expired += await this.db.tx(async (q) => {
        const [task] = await q.query<{ state: string }>(
          'SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE',
          [task_id],
        );
        const [{ n }] = await q.query<{ n: number }>(
          `WITH e AS (UPDATE leases l SET state = 'expired' FROM tasks t
                      WHERE t.task_id = l.task_id AND l.task_id = $1 AND l.state = 'active' AND ${overdue(2)}
                      RETURNING 1)
           SELECT count(*)::int AS n FROM e`,
          [task_id, ...args],
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
    checkAgainstSpec: (spec: AnyTaskSpec) => void = () => {},
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
    const specs = new Map<Hex, AnyTaskSpec>();
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
    specs: Map<Hex, AnyTaskSpec>,
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

  /** The agreement rule (verification.ts) over every task of a batch (under their row locks). */
  private decideAll(tasks: TaskRow[], votes: { task_id: Hex; digest: Hex }[]): Map<Hex, Decision> {
    const decisions = new Map<Hex, Decision>();
    for (const task of tasks) {
      if (task.state !== 'open') {
        decisions.set(task.task_id, { state: task.state });
        continue;
      }
      const digests = votes.filter((v) => v.task_id === task.task_id).map((v) => v.digest);
      const outcome = agreement(digests, task.wanted);
      if (outcome.kind === 'wait') decisions.set(task.task_id, { state: 'open' });
      else if (outcome.kind === 'audit') decisions.set(task.task_id, { state: 'auditing', action: 'audit' });
      else decisions.set(task.task_id, { state: 'refereeing', action: 'referee' });
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
      // The audit or the referee gives verdicts; votes alone decide nothing.
      verdict: 'pending',
    }));
    const changes = [...decisions].flatMap(([task_id, d]) =>
      d.action ? [{ task_id, action: d.action }] : [],
    );
    const decided = changes.map((c) => c.task_id);
    await q.query('SELECT queue_write_votes($1::jsonb, $2::text[], $3::text[], $4::jsonb, $5)', [
      JSON.stringify(votes),
      votes.map((v) => v.lease_id),
      decided,
      JSON.stringify(changes),
      now,
    ]);
  }

  /**
   * Marks the task agreed on `digest` (the audit passed, or the referee decided): its voters are
   * 'majority', every other vote 'wrong'; trust records follow (verification.ts). `decidedBy` tells
   * the settler whether identical votes carried it or the referee's verdict must (docs/TRUST.md).
   */
  async decide(q: Queryable, taskId: Hex, digest: Hex, decidedBy: 'votes' | 'referee'): Promise<void> {
    await q.query(
      `UPDATE tasks t SET state = 'agreed', agreed_digest = $2, agreed_at = $3, open_slots = 0, decided_by = $4,
              result = (SELECT v.result FROM votes v WHERE v.task_id = t.task_id AND v.digest = $2 LIMIT 1)
       WHERE t.task_id = $1`,
      [taskId, digest, Date.now(), decidedBy],
    );
    await q.query(
      `UPDATE votes SET verdict = CASE WHEN digest = $2 THEN 'majority' ELSE 'wrong' END
       WHERE task_id = $1 AND verdict <> 'vetoed'`,
      [taskId, digest],
    );
    await q.query(`UPDATE leases SET state = 'cancelled' WHERE task_id = $1 AND state = 'active'`, [taskId]);
    await this.recordTrust(q, taskId);
  }

  /**
   * Every vote of the task is wrong (a failed audit, or no side matched the referee): they are
   * marked so and the task reopens for one fresh replica from a worker that never held it, unless it
   * has collected `maxReplicas` votes already (`maxVotesWithTruth` once the true digest is known;
   * then it fails).
   */
  async rejectAll(q: Queryable, taskId: Hex, reason: string): Promise<'open' | 'failed'> {
    await q.query(`UPDATE votes SET verdict = 'wrong' WHERE task_id = $1 AND verdict <> 'vetoed'`, [taskId]);
    await this.recordTrust(q, taskId);
    const n = await this.countedVotes(q, taskId);
    const [{ known }] = await q.query<{ known: boolean }>(
      `SELECT referee->>'right' IS NOT NULL AS known FROM tasks WHERE task_id = $1`,
      [taskId],
    );
    const limit = known ? (this.opts.maxVotesWithTruth ?? 3 * this.opts.maxReplicas) : this.opts.maxReplicas;
    if (n >= limit) {
      await q.query(`UPDATE tasks SET state = 'failed', error = $2 WHERE task_id = $1`, [taskId, reason]);
      return 'failed';
    }
    await q.query(
      `UPDATE tasks SET state = 'open', wanted = $2, open_slots = 1, error = $3 WHERE task_id = $1`,
      [taskId, n + 1, reason],
    );
    return 'open';
  }

  /**
   * The referee knows `right` but too few votes carry it (refereeQuorum): every other vote is wrong
   * and the task reopens for one more replica from a worker that never held it.
   */
  async reopenFor(q: Queryable, taskId: Hex, right: Hex): Promise<'open'> {
    await q.query(
      `UPDATE votes SET verdict = 'wrong' WHERE task_id = $1 AND digest <> $2 AND verdict <> 'vetoed'`,
      [taskId, right],
    );
    await this.recordTrust(q, taskId);
    const n = await this.countedVotes(q, taskId);
    await q.query(`UPDATE tasks SET state = 'open', wanted = $2, open_slots = 1 WHERE task_id = $1`, [
      taskId,
      n + 1,
    ]);
    return 'open';
  }

  /**
   * The referee refuted every side but `winner`'s: those votes are wrong (trust lost now), and the
   * winner's go to the audit (state 'auditing', a fresh draw), which decides the task if it passes.
   */
  async auditWinner(q: Queryable, taskId: Hex, winner: Hex): Promise<'auditing'> {
    await q.query(
      `UPDATE votes SET verdict = 'wrong' WHERE task_id = $1 AND digest <> $2 AND verdict = 'pending'`,
      [taskId, winner],
    );
    await this.recordTrust(q, taskId);
    await q.query(`UPDATE tasks SET state = 'auditing', audit = NULL WHERE task_id = $1`, [taskId]);
    return 'auditing';
  }

  /** A task's votes (for `digest`, if given) that count in its agreement: all but the vetoed ones (./veto.ts). */
  async countedVotes(q: Queryable, taskId: Hex, digest?: Hex): Promise<number> {
    const [{ n }] = await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM votes
       WHERE task_id = $1 AND verdict <> 'vetoed' AND ($2::text IS NULL OR digest = $2)`,
      [taskId, digest ?? null],
    );
    return n;
  }

  /** Applies a decided task's verdicts to its voters' trust records (each vote counted once). */
  private async recordTrust(q: Queryable, taskId: Hex): Promise<void> {
    const rows = await q.query<{
      worker: string;
      verdict: string;
      audited: number | null;
      failures: number | null;
    }>(
      `SELECT v.worker, v.verdict, w.audited, w.failures FROM votes v LEFT JOIN worker_trust w USING (worker)
       WHERE v.task_id = $1 AND v.verdict IN ('majority', 'wrong') AND NOT v.trust_counted`,
      [taskId],
    );
    if (rows.length === 0) return;
    const next = rows.map((r) => {
      const record: TrustRecord = { audited: r.audited ?? 0, failures: r.failures ?? 0 };
      return { worker: r.worker, ...(r.verdict === 'majority' ? afterPass(record) : afterFailure(record)) };
    });
    await this.writeTrust(q, next);
    await q.query(
      `UPDATE votes SET trust_counted = true WHERE task_id = $1 AND verdict IN ('majority', 'wrong')`,
      [taskId],
    );
  }

  /** Writes these workers' trust records (replacing what they had). */
  async writeTrust(q: Queryable, records: (TrustRecord & { worker: string })[]): Promise<void> {
    await q.query(
      `INSERT INTO worker_trust (worker, audited, failures, updated_at)
       SELECT x.worker, x.audited, x.failures, $2 FROM jsonb_to_recordset($1::jsonb) AS x(worker text, audited int, failures int)
       ON CONFLICT (worker) DO UPDATE SET audited = excluded.audited, failures = excluded.failures, updated_at = excluded.updated_at`,
      [JSON.stringify(records), Date.now()],
    );
  }

  /** Rewrites one worker's trust record with `change` (a struck auditor, a withholding voter). */
  async updateTrust(q: Queryable, worker: string, change: (r: TrustRecord) => TrustRecord): Promise<void> {
    await this.writeTrust(q, [{ worker, ...change(await this.trustOf(worker, q)) }]);
  }

  /** A worker's trust record. */
  async trustOf(worker: string, q: Queryable = this.db): Promise<TrustRecord> {
    const [row] = await q.query<TrustRecord>('SELECT audited, failures FROM worker_trust WHERE worker = $1', [
      worker,
    ]);
    return row ?? NEW_WORKER;
  }
}
