/**
 * Audits (docs/TRUST.md): before a task whose replicas all voted one digest may settle, the
 * coordinator's CPU reference checks it, so holding every replica of a task is not enough to settle a
 * wrong result.
 *
 * Once the votes are in, one checkpoint interval i is drawn at random. A voter uploads the state at
 * checkpoint i−1 (the initial weights when i = 0) and the final state (unless i is the last
 * interval, whose end the audit computes itself); each upload is kept only if it hashes to the
 * trace's stateHash at that step (./states.ts). The audit recomputes the interval and compares the
 * state hash at checkpoint i, then runs validation from the final state and compares valCorrect,
 * valCount, valLoss and weightsHash. A voter that does not upload within `stateWaitMs` makes the
 * audit recompute the whole task from step 0 instead (a restarted worker or reloaded tab,
 * an evicted state, a liar who has no state that hashes to its trace).
 *
 * The side the referee supported against other votes (./referee.ts) is audited the same way: the
 * referee checked it only up to the first divergence.
 *
 * Pass: the task is agreed (decided by 'votes' with ≥ quorum identical votes and no other vote, else
 * 'referee').
 * Fail: the true result is computed from step 0, every vote is marked wrong (trust lost) and the
 * task reopens for one fresh replica from a worker that never held it; a later vote for the true
 * digest settles it by the referee's verdict (./referee.ts).
 */
import { randomInt } from 'node:crypto';
import type { Hex } from 'viem';
import { loadDataset } from '../data/node.ts';
import { CpuTrainer, hashI32, runSteps, stateHashOf } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import { type AnyTaskSpec, checkpointSteps, type TaskResult } from '../protocol/index.ts';
import type { Db } from './db.ts';
import type { Recompute } from './recompute-pool.ts';
import { recomputeTask } from './referee.ts';
import type { StateExchange } from './states.ts';
import type { Store } from './store.ts';
import { decidedBy } from './verification.ts';

export interface AuditRecord {
  /** Index of the checkpoint interval checked: (checkpoint i−1, checkpoint i]. */
  interval: number;
  /** When the interval was drawn (after every vote was in). */
  drawnAt: number;
  passed?: boolean;
  /** 'uploaded': from voters' states; 'initial': interval 0 from the initial weights; 'fallback': from step 0. */
  start?: 'uploaded' | 'initial' | 'fallback';
  /** Training steps the audit recomputed (the whole task on a fallback or a failure). */
  stepsRecomputed?: number;
  /** Validation examples the audit evaluated. */
  validated?: number;
  /** The true digest, when the audit failed and recomputed the task. */
  trueDigest?: Hex;
  reason?: string;
  ms?: number;
}

/** What an audit of `result` found, given the start state of the drawn interval and the final state. */
export async function auditResult(
  spec: AnyTaskSpec,
  result: TaskResult,
  interval: number,
  start: TrainState | undefined,
  final: TrainState | undefined,
): Promise<{ passed: boolean; reason?: string; stepsRecomputed: number; validated: number }> {
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  const target = result.checkpoints[interval];
  const trainer = new CpuTrainer(spec, dataset, start);
  const from = trainer.step;
  await runSteps(trainer, target.step);
  const stepsRecomputed = trainer.step - from;
  if (stateHashOf(trainer) !== target.stateHash)
    return { passed: false, reason: `state at step ${target.step} differs`, stepsRecomputed, validated: 0 };
  const last = new CpuTrainer(
    spec,
    dataset,
    interval === result.checkpoints.length - 1 ? trainer.state() : final,
  );
  const v = last.validate();
  const validated = v.valCount;
  if (hashI32(last.params) !== result.weightsHash)
    return { passed: false, reason: 'weightsHash is not the final state', stepsRecomputed, validated };
  if (
    v.valCorrect !== result.valCorrect ||
    v.valCount !== result.valCount ||
    v.valLoss.toString() !== result.valLoss
  )
    return { passed: false, reason: 'validation metrics differ', stepsRecomputed, validated };
  return { passed: true, stepsRecomputed, validated };
}

export interface AuditOptions {
  states: StateExchange;
  /** How long to wait for a voter's uploads before recomputing from step 0. */
  stateWaitMs: number;
  log?: (msg: string) => void;
  /** Where the recomputations run (the coordinator's threads, ./recompute-pool.ts); default here. */
  recompute?: Pick<Recompute, 'audit' | 'truth'>;
  /** Audits in flight at once within a pass (default 1). */
  parallel?: number;
}

interface AuditTask {
  task_id: Hex;
  spec: AnyTaskSpec;
  audit: AuditRecord | null;
  referee: { right?: Hex | null; winner?: Hex } | null;
}

/** Audits every task waiting for it whose states are in (or given up on); returns how many were decided. */
export async function auditPending(db: Db, store: Store, opts: AuditOptions): Promise<number> {
  const tasks = await db.query<AuditTask>(
    `SELECT task_id, spec, audit, referee FROM tasks WHERE state = 'auditing' ORDER BY agreed_at NULLS FIRST, seq`,
  );
  // One query for every upload in, instead of a round of queries per waiting task on every pass.
  const uploaded = new Set(
    (
      await db.query<{ task_id: Hex; step: number }>(
        'SELECT task_id, step FROM state_requests WHERE params IS NOT NULL',
      )
    ).map((r) => `${r.task_id}:${r.step}`),
  );
  const ready = tasks.filter((task) => !stillWaiting(task, uploaded, opts.stateWaitMs));
  let decided = 0;
  // Several audits in flight overlap one's queries with another's recomputation (on a thread). A task
  // whose audit throws is logged and retried next pass; it does not hold up the tasks behind it.
  let next = 0;
  const lane = async () => {
    while (next < ready.length) {
      const task = ready[next++];
      try {
        if (await auditOne(db, store, task, opts)) decided++;
      } catch (err) {
        opts.log?.(`audit of ${task.task_id}: ${err instanceof Error ? err.message : err} (will retry)`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.parallel ?? 1, ready.length) }, lane));
  return decided;
}

/**
 * Audits by how they started: 'uploaded' states, the 'initial' weights, a 'fallback' recomputation
 * from step 0, or 'drawn' (the interval is drawn, the audit not run yet). For the benchmarks.
 */
export async function auditsByStart(db: Db): Promise<Record<string, number>> {
  const rows = await db.query<{ start: string; n: number }>(
    `SELECT coalesce(audit->>'start', 'drawn') AS start, count(*)::int AS n FROM tasks
     WHERE audit IS NOT NULL GROUP BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.start, r.n]));
}

/**
 * A task whose interval was drawn, whose wanted states are not all uploaded yet and whose wait is
 * not over: nothing to do this pass. The wanted steps follow from the spec (the checkpoints every
 * valid trace has), so this needs no query.
 */
function stillWaiting(task: AuditTask, uploaded: Set<string>, stateWaitMs: number): boolean {
  const record = task.audit;
  if (!record || record.passed !== undefined || task.referee?.right) return false;
  if (Date.now() - record.drawnAt >= stateWaitMs) return false;
  const steps = checkpointSteps(task.spec.training.steps, task.spec.checkpointEvery);
  const wanted = [
    ...(record.interval > 0 ? [steps[record.interval - 1]] : []),
    ...(record.interval < steps.length - 1 ? [steps[steps.length - 1]] : []),
  ];
  return wanted.some((step) => !uploaded.has(`${task.task_id}:${step}`));
}

async function auditOne(db: Db, store: Store, task: AuditTask, opts: AuditOptions): Promise<boolean> {
  const recompute = opts.recompute ?? { audit: auditResult, truth: recomputeTask };
  const votes = await db.query<{ worker: string; digest: Hex; result: TaskResult }>(
    `SELECT worker, digest, result FROM votes WHERE task_id = $1 AND verdict = 'pending' ORDER BY received_at, worker`,
    [task.task_id],
  );
  if (votes.length === 0 || new Set(votes.map((v) => v.digest)).size !== 1) {
    await db.query(`UPDATE tasks SET state = 'refereeing' WHERE task_id = $1 AND state = 'auditing'`, [
      task.task_id,
    ]);
    return false;
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
    return true;
  }
  const n = result.checkpoints.length;
  // Drawn only now, after every vote is in: nobody could know which interval would be checked.
  const record: AuditRecord = task.audit ?? { interval: randomInt(n), drawnAt: Date.now() };
  if (!task.audit)
    await db.query('UPDATE tasks SET audit = $2::jsonb WHERE task_id = $1', [
      task.task_id,
      JSON.stringify(record),
    ]);
  const states = await wantedStates(
    opts.states,
    task,
    result,
    record.interval,
    votes.map((v) => v.worker),
  );
  const started = Date.now();
  let outcome: { passed: boolean; reason?: string; stepsRecomputed: number; validated: number };
  let start: AuditRecord['start'];
  if (states === 'wait') {
    if (Date.now() - record.drawnAt < opts.stateWaitMs) return false;
    // No states: recompute the task from step 0 and compare digests.
    start = 'fallback';
    const truth = await recompute.truth(task.spec);
    outcome = {
      passed: truth.digest === result.digest,
      reason: truth.digest === result.digest ? undefined : 'the task recomputed from step 0 differs',
      stepsRecomputed: task.spec.training.steps,
      validated: truth.valCount,
    };
    if (!outcome.passed) record.trueDigest = truth.digest;
  } else {
    start = record.interval === 0 ? 'initial' : 'uploaded';
    outcome = await recompute.audit(task.spec, result, record.interval, states.start, states.final);
  }
  if (!outcome.passed && !record.trueDigest) {
    const truth = await recompute.truth(task.spec);
    record.trueDigest = truth.digest;
    outcome.stepsRecomputed += task.spec.training.steps;
    outcome.validated += truth.valCount;
  }
  const done: AuditRecord = {
    ...record,
    passed: outcome.passed,
    start,
    stepsRecomputed: outcome.stepsRecomputed,
    validated: outcome.validated,
    reason: outcome.reason,
    ms: Date.now() - started,
  };
  await db.tx(async (q) => {
    const [row] = await q.query<{ state: string }>('SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE', [
      task.task_id,
    ]);
    if (row.state !== 'auditing') return; // another coordinator got there first
    await q.query('UPDATE tasks SET audit = $2::jsonb WHERE task_id = $1', [
      task.task_id,
      JSON.stringify(done),
    ]);
    if (outcome.passed) {
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
      await store.rejectAll(q, task.task_id, `audit failed: ${outcome.reason}`);
    }
  });
  await opts.states.close(task.task_id);
  opts.log?.(
    `audited ${task.task_id} interval ${record.interval} (${start}, ${done.ms} ms, ${Date.now() - record.drawnAt} ms after the draw): ` +
      (outcome.passed ? 'passed' : `failed, ${outcome.reason}`),
  );
  return true;
}

/**
 * The uploaded, verified states the audit needs (the start of the drawn interval unless it is the
 * first, the final state unless the interval is the last), or 'wait' while any is missing.
 */
async function wantedStates(
  states: StateExchange,
  task: AuditTask,
  result: TaskResult,
  interval: number,
  voters: string[],
): Promise<{ start?: TrainState; final?: TrainState } | 'wait'> {
  const cps = result.checkpoints;
  const open = (i: number) =>
    states.open(task.task_id, task.spec, cps[i].step, cps[i].stateHash as Hex, voters);
  const start = interval > 0 ? await open(interval - 1) : undefined;
  const final = interval < cps.length - 1 ? await open(cps.length - 1) : undefined;
  if ((start && !start.state) || (final && !final.state)) return 'wait';
  return { start: start?.state, final: final?.state };
}
