/**
 * Audits (docs/TRUST.md): before a task whose replicas all voted one digest may settle, spans of it
 * are replayed by workers that never held it (./audit-jobs.ts), so holding every replica of a task
 * is not enough to settle a wrong result, and checking a result costs the coordinator a few hash
 * comparisons, not a training run.
 *
 * Once the votes are in, the spans are drawn (verification.ts `auditSpans`: the last checkpoint
 * interval, with the validation, and one other). A voter uploads the state at each span's start
 * (./states.ts; kept only if it hashes to the trace). Then one job per span is drawn for a worker;
 * its answer is compared with the voters' claim. A span whose answer disagrees is disputed: the CPU
 * referee replays that one span from the uploaded state and strikes whichever side it shows wrong. A
 * span nobody answers in time is replayed by the coordinator's CPU (the fallback, as in a small
 * network where every worker held the task). Voters who do not upload the start states within
 * `stateWaitMs` have the whole task re-executed by a worker instead, and lose half their count.
 *
 * A result that passes and would rank in its search's first REEXECUTE_TOP is re-executed in full by
 * another drawn worker before it is decided: what the leaderboard shows first and what the evolution
 * breeds from never rests on one worker's word and a sampled audit.
 *
 * Pass: the task is agreed (decided by 'votes' with ≥ quorum identical votes and no other vote, else
 * 'referee'). Fail: the true result is computed from step 0, every vote is marked wrong (trust lost)
 * and the task reopens for one fresh replica from a worker that never held it; a later vote for the
 * true digest settles it by the referee's verdict (./referee.ts).
 */
import type { Hex } from 'viem';
import { loadDataset } from '../data/node.ts';
import { replaySpan } from '../engine/replay.ts';
import { stateHashOf } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import { MAX_STEP_HASHES } from '../protocol/http.ts';
import { type AnyTaskSpec, checkpointSteps, type TaskResult } from '../protocol/index.ts';
import { AuditJobs, type JobRow, spanOf } from './audit-jobs.ts';
import type { Db, Queryable } from './db.ts';
import type { Recompute } from './recompute-pool.ts';
import { recomputeTask } from './referee.ts';
import type { StateExchange } from './states.ts';
import type { Store } from './store.ts';
import {
  type AuditAnswer,
  type AuditSpan,
  afterFailure,
  afterWithholding,
  answersAgree,
  auditSpans,
  claimOf,
  decidedBy,
  firstDivergence,
  needsReexecution,
  REEXECUTE_TOP,
  refereeSpan,
  sideUpheld,
  wholeTask,
} from './verification.ts';

export interface AuditRecord {
  /** The spans checked, drawn after every vote was in (a whole-task span once states were withheld). */
  spans: AuditSpan[];
  drawnAt: number;
  /** When the audit jobs were made (the start states were in, or given up on). */
  jobsAt?: number;
  /** The voters did not upload the start states in time: the task was re-executed whole. */
  withheld?: boolean;
  /** The result would rank in its search's first REEXECUTE_TOP: a full re-execution was asked. */
  reexecution?: boolean;
  passed?: boolean;
  /** 'workers': every span answered by a worker; 'cpu': some span replayed by the coordinator. */
  start?: 'workers' | 'cpu';
  /** Training steps the coordinator's CPU replayed (fallbacks, disputes, the truth after a failure). */
  stepsRecomputed?: number;
  /** Training steps workers replayed for the audit. */
  stepsByWorkers?: number;
  /** Validation examples evaluated for the audit (by workers or the coordinator). */
  validated?: number;
  /** Auditors the CPU referee showed wrong (struck). */
  refuted?: string[];
  /** The true digest, when the audit failed and recomputed the task. */
  trueDigest?: Hex;
  reason?: string;
  /** Disputes bisected to one step: where the sides parted (null: over the validation), who was upheld. */
  bisections?: Bisection[];
}

export interface Bisection {
  span: [number, number];
  /** The step the referee recomputed ((step − 1, step]); null: the sides parted only on the validation. */
  step: number | null;
  auditor: string;
  upheld: 'voters' | 'auditor' | 'neither';
}

/** A span replayed on the coordinator's CPU (a fallback or a dispute): the same function auditors run. */
export async function recomputeSpan(
  spec: AnyTaskSpec,
  span: AuditSpan,
  start: TrainState | undefined,
): Promise<AuditAnswer> {
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  return replaySpan(spec, dataset, span, start);
}

export interface AuditOptions {
  states: StateExchange;
  /** Where audit jobs are drawn and answered (absent: one on `db` with the defaults). */
  jobs?: AuditJobs;
  /** How long to wait for a voter's uploads before the whole task is re-executed. */
  stateWaitMs: number;
  log?: (msg: string) => void;
  /** Where the CPU replays run (the coordinator's threads, ./recompute-pool.ts); default here. */
  recompute?: Pick<Recompute, 'span' | 'truth'>;
  /** Audits in flight at once within a pass (default 1). */
  parallel?: number;
}

interface AuditTask {
  task_id: Hex;
  spec: AnyTaskSpec;
  search_id: string | null;
  audit: AuditRecord | null;
  referee: { right?: Hex | null; winner?: Hex } | null;
}

const jobsByDb = new WeakMap<Db, AuditJobs>();

/** Audits every task waiting for it that can move; returns how many were decided. */
export async function auditPending(db: Db, store: Store, opts: AuditOptions): Promise<number> {
  const jobs = opts.jobs ?? jobsByDb.get(db) ?? new AuditJobs(db);
  jobsByDb.set(db, jobs);
  const tasks = await db.query<AuditTask>(
    `SELECT task_id, spec, search_id, audit, referee FROM tasks WHERE state = 'auditing'
     ORDER BY agreed_at NULLS FIRST, seq`,
  );
  if (tasks.length === 0) return 0;
  const uploaded = new Set(
    (
      await db.query<{ task_id: Hex; step: number }>(
        'SELECT task_id, step FROM state_requests WHERE params IS NOT NULL AND task_id = ANY($1::text[])',
        [tasks.map((t) => t.task_id)],
      )
    ).map((r) => `${r.task_id}:${r.step}`),
  );
  const jobRows = await jobs.ofTasks(tasks.filter((t) => t.audit?.jobsAt).map((t) => t.task_id));
  const ready = tasks.filter(
    (task) => !stillWaiting(task, uploaded, jobRows.get(task.task_id), opts.stateWaitMs),
  );
  let decided = 0;
  // Several audits in flight overlap one's queries with another's CPU replay (on a thread). A task
  // whose audit throws is logged and retried next pass; it does not hold up the tasks behind it.
  let next = 0;
  const lane = async () => {
    while (next < ready.length) {
      const task = ready[next++];
      try {
        if (await auditThrough(db, store, jobs, task, jobRows.get(task.task_id) ?? [], opts)) decided++;
      } catch (err) {
        opts.log?.(`audit of ${task.task_id}: ${err instanceof Error ? err.message : err} (will retry)`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.parallel ?? 1, ready.length) }, lane));
  return decided;
}

/**
 * Audits by how their spans were checked: 'workers', 'cpu' (some span on the coordinator), or
 * 'drawn' (not finished yet). For the benchmarks.
 */
export async function auditsByStart(db: Db): Promise<Record<string, number>> {
  const rows = await db.query<{ start: string; n: number }>(
    `SELECT coalesce(audit->>'start', 'drawn') AS start, count(*)::int AS n FROM tasks
     WHERE audit IS NOT NULL GROUP BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.start, r.n]));
}

/** Nothing to do this pass: waiting for uploads (within the wait) or for workers' answers (in time). */
function stillWaiting(
  task: AuditTask,
  uploaded: Set<string>,
  jobs: JobRow[] | undefined,
  stateWaitMs: number,
): boolean {
  const record = task.audit;
  if (!record || record.passed !== undefined || task.referee?.right) return false;
  if (record.jobsAt) {
    const now = Date.now();
    return (
      (jobs ?? []).every(
        (j) => j.state === 'matched' || (j.state === 'assigned' && j.deadline !== null && j.deadline > now),
      ) && (jobs ?? []).some((j) => j.state === 'assigned')
    );
  }
  if (Date.now() - record.drawnAt >= stateWaitMs) return false;
  return record.spans.some((s) => s.fromStep > 0 && !uploaded.has(`${task.task_id}:${s.fromStep}`));
}

interface Vote {
  worker: string;
  digest: Hex;
  result: TaskResult;
}

async function auditOne(
  db: Db,
  store: Store,
  jobs: AuditJobs,
  task: AuditTask,
  taskJobs: JobRow[],
  opts: AuditOptions,
): Promise<Phase> {
  const votes = await db.query<Vote>(
    `SELECT worker, digest, result FROM votes WHERE task_id = $1 AND verdict = 'pending' ORDER BY received_at, worker`,
    [task.task_id],
  );
  if (votes.length === 0 || new Set(votes.map((v) => v.digest)).size !== 1) {
    await db.query(`UPDATE tasks SET state = 'refereeing' WHERE task_id = $1 AND state = 'auditing'`, [
      task.task_id,
    ]);
    return 'waiting';
  }
  const result = votes[0].result;
  const known = task.referee?.right;
  if (known) {
    // An earlier audit or referee found the true digest: this replica only has to match it.
    await db.tx(async (q) => {
      if (known !== result.digest) await store.rejectAll(q, task.task_id, 'the vote is not the true digest');
      else if (votes.length < (store.opts.refereeQuorum ?? 1)) await store.reopenFor(q, task.task_id, known);
      else await store.decide(q, task.task_id, known, 'referee');
    });
    await closeTask(db, jobs, opts, task.task_id);
    return 'decided';
  }
  const voters = votes.map((v) => v.worker);
  if (!task.audit) {
    // Drawn only now, after every vote is in: nobody could know which spans would be checked.
    const record: AuditRecord = {
      spans: auditSpans(traceSteps(task.spec), Math.random()),
      drawnAt: Date.now(),
    };
    await saveRecord(db, task.task_id, record);
    for (const span of record.spans)
      if (span.fromStep > 0) await openState(opts.states, task, result, span, voters);
    return 'advanced';
  }
  const record = task.audit;
  if (!record.jobsAt) return makeJobs(db, store, jobs, task, result, voters, opts);
  return (await judge(db, store, jobs, task, taskJobs, votes, opts)) ? 'decided' : 'waiting';
}

type Phase = 'decided' | 'waiting' | 'advanced';

/**
 * Moves a task through as many phases as it can in one pass (draw, jobs, judgement): a span that
 * needs no upload, a wait of 0 or a network with nobody to draw need not cost a pass each.
 */
async function auditThrough(
  db: Db,
  store: Store,
  jobs: AuditJobs,
  task: AuditTask,
  taskJobs: JobRow[],
  opts: AuditOptions,
): Promise<boolean> {
  let current = task;
  let currentJobs = taskJobs;
  for (let phase = 0; phase < 4; phase++) {
    const outcome = await auditOne(db, store, jobs, current, currentJobs, opts);
    if (outcome !== 'advanced') return outcome === 'decided';
    const [row] = await db.query<AuditTask>(
      `SELECT task_id, spec, search_id, audit, referee FROM tasks WHERE task_id = $1 AND state = 'auditing'`,
      [task.task_id],
    );
    if (!row) return false;
    current = row;
    currentJobs = (await jobs.ofTasks([row.task_id])).get(row.task_id) ?? [];
    const uploaded = new Set(
      (
        await db.query<{ step: number }>(
          'SELECT step FROM state_requests WHERE task_id = $1 AND params IS NOT NULL',
          [row.task_id],
        )
      ).map((r) => `${row.task_id}:${r.step}`),
    );
    if (stillWaiting(row, uploaded, currentJobs, opts.stateWaitMs)) return false;
  }
  return false;
}

/** The checkpoint steps every valid trace of the task has. */
function traceSteps(spec: AnyTaskSpec): number[] {
  return checkpointSteps(spec.training.steps, spec.checkpointEvery);
}

async function saveRecord(q: Queryable, taskId: Hex, record: AuditRecord): Promise<void> {
  await q.query('UPDATE tasks SET audit = $2::jsonb WHERE task_id = $1', [taskId, JSON.stringify(record)]);
}

/** Opens (or reads) the request for the voters' state at a span's start. */
function openState(
  states: StateExchange,
  task: AuditTask,
  result: TaskResult,
  span: AuditSpan,
  voters: string[],
) {
  const cp = result.checkpoints.find((c) => c.step === span.fromStep)!;
  return states.open(task.task_id, task.spec, span.fromStep, cp.stateHash as Hex, voters);
}

/** Every worker that ever held a lease on the task: none of them may audit it. */
async function holders(q: Queryable, taskId: Hex): Promise<string[]> {
  const rows = await q.query<{ worker: string }>('SELECT DISTINCT worker FROM leases WHERE task_id = $1', [
    taskId,
  ]);
  return rows.map((r) => r.worker);
}

/**
 * The start states are in (or the wait is over): makes a job per span. Withheld states: one job
 * re-executing the whole task from the initial weights, and the voters lose half their count.
 */
async function makeJobs(
  db: Db,
  store: Store,
  jobs: AuditJobs,
  task: AuditTask,
  result: TaskResult,
  voters: string[],
  opts: AuditOptions,
): Promise<Phase> {
  const record = task.audit!;
  let spans = record.spans;
  let withheld = false;
  for (const span of spans) {
    if (span.fromStep > 0 && !(await openState(opts.states, task, result, span, voters)).state)
      withheld = true;
  }
  if (withheld && Date.now() - record.drawnAt < opts.stateWaitMs) return 'waiting';
  if (withheld) spans = wholeTask(traceSteps(task.spec));
  await db.tx(async (q) => {
    const [row] = await q.query<{ state: string; audit: AuditRecord | null }>(
      'SELECT state, audit FROM tasks WHERE task_id = $1 FOR UPDATE',
      [task.task_id],
    );
    if (row.state !== 'auditing' || row.audit?.jobsAt) return; // another coordinator got there first
    const withClaims = spans.map((span) => ({ ...span, expected: claimOf(span, result)! }));
    await jobs.create(q, task.task_id, withClaims, 'audit', await holders(q, task.task_id));
    if (withheld) for (const v of voters) await store.updateTrust(q, v, afterWithholding);
    await saveRecord(q, task.task_id, { ...record, spans, withheld, jobsAt: Date.now() });
  });
  if (withheld) opts.log?.(`audit of ${task.task_id}: start states withheld, the task is re-executed whole`);
  return 'advanced';
}

/** What a disputed job's bisection has come to this pass. */
type DisputeOutcome =
  | { kind: 'waiting' }
  /** Nobody could defend the voters' claim, or a list could not be bisected: replay the span here. */
  | { kind: 'cpu'; struck: string[]; withholding: string[] }
  /** The auditor was shown wrong, or went silent: draw the job for another worker. */
  | { kind: 'redraw'; struck: string[]; withholding: string[]; bisection?: Bisection }
  /** The referee's one step decided it (the auditor was right, or both sides were wrong). */
  | { kind: 'decided'; struck: string[]; votersRight: boolean; bisection: Bisection };

/**
 * A disputed job (an auditor's answer differs from the voters' claim), bisected to one step. First
 * each side (the auditor and every voter) is asked for its state hash after every step of the span
 * ('steps' jobs, replayed from the same verified start). A list inconsistent with its side's own
 * answer is proof of a lie. The first step where the auditor's list and a consistent voter's list
 * part is where one of them lied: the state both agree on just before it is fetched from either side
 * ('state' jobs; the upload must hash to the agreed hash), and the CPU referee recomputes that one
 * step. Its hash upholds one side and strikes the other. The coordinator's CPU does one step instead
 * of an interval, whichever side lies, so a cabal of auditors disputing honest results buys nothing.
 */
async function bisect(
  db: Db,
  jobs: AuditJobs,
  task: AuditTask,
  job: JobRow,
  kids: readonly JobRow[],
  voters: readonly string[],
  voted: TaskResult,
  opts: AuditOptions,
  recompute: Pick<Recompute, 'span'>,
): Promise<DisputeOutcome> {
  const span = spanOf(job);
  const auditor = job.worker!;
  const now = Date.now();
  const late = (k: JobRow) => k.state === 'assigned' && k.deadline !== null && k.deadline <= now;
  const answering = (k: JobRow) => k.state === 'assigned' && !late(k);
  if (span.toStep - span.fromStep > MAX_STEP_HASHES) return { kind: 'cpu', struck: [], withholding: [] };
  const stepKids = kids.filter((k) => k.report === 'steps');
  if (stepKids.length === 0) {
    await db.tx(async (q) => {
      await jobs.assign(q, job, span, 'steps', auditor, job.answer!);
      for (const voter of voters) await jobs.assign(q, job, span, 'steps', voter, job.expected);
    });
    return { kind: 'waiting' };
  }
  const mine = stepKids.find((k) => k.worker === auditor)!;
  if (mine.state === 'mismatched') return { kind: 'redraw', struck: [auditor], withholding: [] };
  if (late(mine)) return { kind: 'redraw', struck: [], withholding: [auditor] };
  const voterKids = stepKids.filter((k) => k.worker !== auditor);
  const liars = voterKids.filter((k) => k.state === 'mismatched').map((k) => k.worker!);
  const defender = voterKids.find((k) => k.state === 'matched');
  if (!defender) {
    if (voterKids.some(answering)) return { kind: 'waiting' };
    return { kind: 'cpu', struck: liars, withholding: voterKids.filter(late).map((k) => k.worker!) };
  }
  if (mine.state !== 'matched') return { kind: 'waiting' };
  const mineList = mine.answer!.stepHashes!;
  const theirList = defender.answer!.stepHashes!;
  const d = firstDivergence(span, mineList, theirList);
  if (!d.diverges && !span.validate) return { kind: 'cpu', struck: liars, withholding: [] };
  const sides = [auditor, defender.worker!];
  let start: TrainState | undefined;
  if (d.agreedStep === span.fromStep) {
    if (span.fromStep > 0) start = (await openState(opts.states, task, voted, span, [])).state;
    if (span.fromStep > 0 && !start) throw new Error(`the state at step ${span.fromStep} is gone`);
  } else {
    const agreedHash = d.agreedHash as Hex;
    const request = await opts.states.open(task.task_id, task.spec, d.agreedStep, agreedHash, sides, false);
    if (!request.state) {
      const stateKids = kids.filter((k) => k.report === 'state');
      if (stateKids.length === 0) {
        const upTo = { fromStep: span.fromStep, toStep: d.agreedStep, validate: false };
        await db.tx(async (q) => {
          for (const side of sides) await jobs.assign(q, job, upTo, 'state', side, { stateHash: agreedHash });
        });
        return { kind: 'waiting' };
      }
      if (stateKids.some(answering)) return { kind: 'waiting' };
      return { kind: 'cpu', struck: liars, withholding: [] };
    }
    // A checkpoint's request opened earlier for the voters' trace may hold another state.
    if (stateHashOf(request.state) !== agreedHash) return { kind: 'cpu', struck: liars, withholding: [] };
    start = request.state;
  }
  const truth = await recompute.span(task.spec, refereeSpan(d), start);
  const auditorRight = sideUpheld(span, d, mine.answer!, truth);
  const votersRight = sideUpheld(span, d, defender.answer!, truth);
  const bisection: Bisection = {
    span: [span.fromStep, span.toStep],
    step: d.diverges ? d.agreedStep + 1 : null,
    auditor,
    upheld: votersRight ? 'voters' : auditorRight ? 'auditor' : 'neither',
  };
  const struck = [...liars, ...(auditorRight ? [] : [auditor]), ...(votersRight ? [] : [defender.worker!])];
  opts.log?.(
    `dispute on ${task.task_id} (${span.fromStep}, ${span.toStep}]: bisected to ` +
      `${bisection.step === null ? 'the validation' : `step ${bisection.step}`}, upheld ${bisection.upheld}`,
  );
  if (votersRight) return { kind: 'redraw', struck, withholding: [], bisection };
  return { kind: 'decided', struck, votersRight, bisection };
}

/** Reads the jobs' outcomes; bisects disputes, replays unanswered spans on the CPU; decides when all are in. */
async function judge(
  db: Db,
  store: Store,
  jobs: AuditJobs,
  task: AuditTask,
  taskJobs: JobRow[],
  votes: Vote[],
  opts: AuditOptions,
): Promise<boolean> {
  const record = task.audit!;
  const result = votes[0].result;
  const recompute = opts.recompute ?? { span: recomputeSpan, truth: recomputeTask };
  const forCpu = new Set((await jobs.redraw(taskJobs)).map((j) => j.job_id));
  let stepsRecomputed = record.stepsRecomputed ?? 0;
  let usedCpu = record.start === 'cpu';
  let failure: string | undefined;
  const refuted: string[] = [...(record.refuted ?? [])];
  const struck: string[] = [];
  const withholders: string[] = [];
  const settled: { jobId: string; state: 'cpu' | 'refuted' }[] = [];
  const reopened: string[] = [];
  const bisections: Bisection[] = [...(record.bisections ?? [])];
  let disputesOpen = false;
  for (const job of taskJobs) {
    if (job.purpose === 'dispute') continue;
    const disputed = job.state === 'mismatched';
    if (disputed && job.worker && job.answer) {
      const kids = taskJobs.filter((k) => k.parent === job.job_id);
      const voters = votes.map((v) => v.worker);
      const outcome = await bisect(db, jobs, task, job, kids, voters, result, opts, recompute);
      if (outcome.kind === 'waiting') {
        disputesOpen = true;
        continue;
      }
      struck.push(...outcome.struck);
      if (outcome.struck.includes(job.worker)) refuted.push(job.worker);
      if (outcome.kind !== 'decided') withholders.push(...outcome.withholding);
      if (outcome.kind !== 'cpu' && outcome.bisection) {
        bisections.push(outcome.bisection);
        if (outcome.bisection.step !== null) stepsRecomputed += 1;
        usedCpu = true;
      }
      if (outcome.kind === 'redraw') {
        reopened.push(job.job_id);
        continue;
      }
      if (outcome.kind === 'decided') {
        settled.push({ jobId: job.job_id, state: 'cpu' });
        if (!outcome.votersRight)
          failure = `a dispute over (${job.from_step}, ${job.to_step}] was bisected to ${
            outcome.bisection.step === null ? 'the validation' : `step ${outcome.bisection.step}`
          }, where the referee's recomputation differs from the votes`;
        continue;
      }
      // 'cpu': replayed here below, as before bisection.
    }
    if (!disputed && !forCpu.has(job.job_id)) continue;
    // The CPU referee replays this one span from the voters' verified upload.
    const span = spanOf(job);
    const start =
      span.fromStep > 0 ? (await openState(opts.states, task, result, span, [])).state : undefined;
    if (span.fromStep > 0 && !start) throw new Error(`the state at step ${span.fromStep} is gone`);
    const truth = await recompute.span(task.spec, span, start);
    stepsRecomputed += span.toStep - span.fromStep;
    usedCpu = true;
    const votersRight = answersAgree(span, job.expected, truth);
    if (disputed && job.answer && !answersAgree(span, job.answer, truth) && job.worker) {
      struck.push(job.worker);
      refuted.push(job.worker);
    }
    settled.push({ jobId: job.job_id, state: disputed ? 'refuted' : 'cpu' });
    if (!votersRight) failure = `span (${span.fromStep}, ${span.toStep}] replayed differs from the votes`;
  }
  const pending =
    disputesOpen ||
    reopened.length > 0 ||
    taskJobs.some(
      (j) =>
        j.purpose !== 'dispute' &&
        !settled.some((s) => s.jobId === j.job_id) &&
        (j.state === 'open' || j.state === 'assigned'),
    );
  // A worker shown wrong loses its trust and the audit jobs drawn for it elsewhere.
  const strike = async (q: Queryable, worker: string) => {
    await store.updateTrust(q, worker, afterFailure);
    await jobs.withdrawFrom(q, worker);
  };
  // What this pass found, kept while the task still waits (for answers, or for its re-execution).
  const keepProgress = async (q: Queryable, more: Partial<AuditRecord> = {}) => {
    for (const s of settled) await jobs.settle(q, s.jobId, s.state);
    for (const id of reopened) await jobs.reopen(q, id);
    for (const w of struck) await strike(q, w);
    for (const w of withholders) await store.updateTrust(q, w, afterWithholding);
    await saveRecord(q, task.task_id, {
      ...record,
      ...more,
      stepsRecomputed,
      refuted,
      bisections,
      start: usedCpu ? 'cpu' : undefined,
    });
  };
  if (!failure && pending) {
    if (settled.length + reopened.length + struck.length + withholders.length > 0)
      await db.tx((q) => keepProgress(q));
    return false;
  }
  const stepsByWorkers = taskJobs
    .filter((j) => j.state === 'matched')
    .reduce((n, j) => n + j.to_step - j.from_step, record.stepsByWorkers ?? 0);
  if (!failure && !record.reexecution && !record.withheld) {
    const ahead = await rankedAhead(db, task, result, REEXECUTE_TOP);
    if (needsReexecution(ahead, REEXECUTE_TOP, false)) {
      await db.tx(async (q) => {
        const [whole] = wholeTask(traceSteps(task.spec));
        await jobs.create(
          q,
          task.task_id,
          [{ ...whole, expected: claimOf(whole, result)! }],
          're-execution',
          [...(await holders(q, task.task_id)), ...refuted],
        );
        await keepProgress(q, { reexecution: true });
      });
      return false;
    }
  }
  const done: AuditRecord = {
    ...record,
    passed: failure === undefined,
    start: usedCpu ? 'cpu' : 'workers',
    stepsRecomputed,
    stepsByWorkers,
    validated: taskJobs.filter((j) => j.validate && j.purpose !== 'dispute').length * result.valCount,
    refuted,
    bisections,
    reason: failure,
  };
  if (failure) {
    const truth = await recompute.truth(task.spec);
    done.trueDigest = truth.digest;
    done.stepsRecomputed = stepsRecomputed + task.spec.training.steps;
    if (truth.digest === result.digest) {
      // A voter lied in its per-step list, not in its vote (it is struck for that alone).
      failure = undefined;
      Object.assign(done, { passed: true, reason: undefined, trueDigest: undefined });
    }
  }
  await db.tx(async (q) => {
    const [row] = await q.query<{ state: string }>('SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE', [
      task.task_id,
    ]);
    if (row.state !== 'auditing') return; // another coordinator got there first
    for (const s of settled) await jobs.settle(q, s.jobId, s.state);
    for (const w of struck) await strike(q, w);
    for (const w of withholders) await store.updateTrust(q, w, afterWithholding);
    await saveRecord(q, task.task_id, done);
    if (!failure) {
      await store.decide(
        q,
        task.task_id,
        result.digest as Hex,
        // A side the referee supported against other votes needs the referee's verdict on chain.
        decidedBy(votes.length, 0, store.opts.quorum, task.referee?.winner !== undefined),
      );
    } else {
      // The referee's verdict is the true digest; a later vote for it settles the task.
      await q.query(`UPDATE tasks SET referee = $2::jsonb WHERE task_id = $1`, [
        task.task_id,
        JSON.stringify({ right: done.trueDigest, by: 'audit', stepsRecomputed: 0 }),
      ]);
      await store.rejectAll(q, task.task_id, `audit failed: ${failure}`);
    }
  });
  await closeTask(db, jobs, opts, task.task_id);
  opts.log?.(
    `audited ${task.task_id} (${done.start}, ${Date.now() - record.drawnAt} ms after the draw): ` +
      (failure ? `failed, ${failure}` : 'passed') +
      (refuted.length > 0 ? `; auditors struck: ${refuted.join(', ')}` : ''),
  );
  return true;
}

/**
 * Decided results of the task's search that the leaderboard ranks ahead of `result`, counted up
 * to `atMost`. Those ahead are a prefix of the leaderboard's order, so counting them among its
 * first `atMost` rows (read from the tasks_rank index) is the same as counting them all, capped.
 */
async function rankedAhead(
  q: Queryable,
  task: AuditTask,
  result: TaskResult,
  atMost: number,
): Promise<number> {
  const [row] = await q.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE acc > $2 OR (acc = $2 AND loss < $3::numeric))::int AS n FROM (
       SELECT (result->>'valCorrect')::float8 / (result->>'valCount')::float8 AS acc,
              (result->>'valLoss')::numeric AS loss
       FROM tasks
       WHERE coalesce(search_id, '') = coalesce($1, '')
         AND state IN ('agreed', 'settling', 'settled') AND result IS NOT NULL
       ORDER BY 1 DESC, 2 LIMIT $4) best`,
    [task.search_id, result.valCorrect / result.valCount, result.valLoss, atMost],
  );
  return row.n;
}

async function closeTask(db: Db, jobs: AuditJobs, opts: AuditOptions, taskId: Hex): Promise<void> {
  await jobs.close(db, taskId);
  await opts.states.close(taskId);
}
