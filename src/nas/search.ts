/**
 * The offline search loop: drives a Strategy with P evaluations in flight, asking for a new proposal
 * whenever a slot frees up (it never waits for all of them), and builds the leaderboard and Pareto
 * front at the end. The evaluator is injected (a worker-thread pool in `cambrian search`), so the
 * loop itself is engine-free and runs anywhere.
 */
import type { TaskResult } from '../protocol/result.ts';
import { type AnyTaskSpec, taskIdOf } from '../protocol/spec.ts';
import { describeAny, spaceOps } from './spaces.ts';
import { accuracyOf, type Proposal, type Strategy, type Trial } from './strategy.ts';
import { spaceOf, type Track } from './tracks.ts';

export interface Evaluation {
  result: TaskResult;
  /** Seconds of training this evaluation cost. */
  seconds: number;
}

export type Evaluate = (spec: AnyTaskSpec, proposal: Proposal) => Promise<Evaluation>;

export interface SearchProgress {
  done: number;
  failed: number;
  budget: number;
  best?: Trial;
  trial: Trial;
  error?: string;
}

export interface SearchOptions {
  strategy: Strategy;
  track: Track;
  /** Training seed shared by every task of the search (so equal architectures are equal tasks). */
  trainingSeed: number;
  budget: number;
  parallel: number;
  evaluate: Evaluate;
  onProgress?: (p: SearchProgress) => void;
  signal?: AbortSignal;
}

export interface LeaderboardEntry {
  rank: number;
  trialId: number;
  architecture: string;
  accuracy: number;
  valCorrect: number;
  valCount: number;
  params: number;
  flops: number;
  steps: number;
  taskId: string;
  spec: AnyTaskSpec;
}

export interface SearchReport {
  strategy: string;
  track: string;
  budget: number;
  trials: number;
  failed: number;
  /** Σ training seconds over all evaluations. */
  trainingSeconds: number;
  wallSeconds: number;
  leaderboard: LeaderboardEntry[];
  pareto: LeaderboardEntry[];
}

/** The task spec of a proposal on a track (v1 for MLP tracks, v2 for conv tracks). */
export function specOf(
  track: Track,
  proposal: Pick<Proposal, 'arch' | 'steps'>,
  trainingSeed: number,
): AnyTaskSpec {
  return spaceOps(spaceOf(track)).toSpec(track, proposal.arch, { steps: proposal.steps, seed: trainingSeed });
}

export async function runSearch(o: SearchOptions): Promise<SearchReport> {
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let trainingSeconds = 0;
  let done = 0;
  let failed = 0;

  const launch = (proposal: Proposal) => {
    const spec = specOf(o.track, proposal, o.trainingSeed);
    const job = o
      .evaluate(spec, proposal)
      .then(
        ({ result, seconds }) => {
          trainingSeconds += seconds;
          o.strategy.tell(proposal.trialId, {
            valCorrect: result.valCorrect,
            valCount: result.valCount,
            valLoss: result.valLoss,
          });
          return undefined;
        },
        (err: unknown) => {
          failed++;
          o.strategy.tell(proposal.trialId, 'failed');
          return err instanceof Error ? err.message : String(err);
        },
      )
      .then((error) => {
        done++;
        inFlight.delete(job);
        const trial = o.strategy.trials()[proposal.trialId];
        o.onProgress?.({ done, failed, budget: o.budget, best: o.strategy.best(), trial, error });
      });
    inFlight.add(job);
  };

  for (;;) {
    while (inFlight.size < o.parallel && !o.signal?.aborted) {
      const proposal = o.strategy.ask();
      if (!proposal) break;
      launch(proposal);
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight);
  }
  const entry = (t: Trial, rank: number): LeaderboardEntry => {
    const spec = specOf(o.track, t, o.trainingSeed);
    return {
      rank,
      trialId: t.trialId,
      architecture: describeAny(t.arch),
      accuracy: accuracyOf(t)!,
      valCorrect: t.outcome!.valCorrect,
      valCount: t.outcome!.valCount,
      params: t.params,
      flops: t.flops,
      steps: t.steps,
      taskId: taskIdOf(spec),
      spec,
    };
  };
  const leaderboard = o.strategy.leaderboard().map((t, i) => entry(t, i + 1));
  const rankOf = new Map(leaderboard.map((e) => [e.trialId, e.rank]));
  return {
    strategy: o.strategy.kind,
    track: o.track.id,
    budget: o.budget,
    trials: o.strategy.trials().length,
    failed,
    trainingSeconds,
    wallSeconds: (performance.now() - started) / 1000,
    leaderboard,
    pareto: o.strategy.paretoFront().map((t) => entry(t, rankOf.get(t.trialId) ?? 0)),
  };
}

/** A plain-text table with right-aligned numeric columns. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const numeric = headers.map((_, i) =>
    rows.every((r) => typeof r[i] === 'number' || /^[\d.,%]+$/.test(String(r[i]))),
  );
  const line = (r: string[]) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

const pct = (a: number) => `${(100 * a).toFixed(2)}%`;
const short = (hex: string) => `${hex.slice(0, 10)}…`;

export function formatLeaderboard(entries: LeaderboardEntry[], fullIds = false): string {
  return formatTable(
    ['rank', 'architecture', 'val acc', 'params', 'FLOPs', 'steps', 'task id'],
    entries.map((e) => [
      e.rank,
      e.architecture,
      pct(e.accuracy),
      e.params,
      e.flops,
      e.steps,
      fullIds ? e.taskId : short(e.taskId),
    ]),
  );
}

/** A progress bar line: `[#####-----] 12/40 best 93.10%`. */
export function progressLine(
  p: Pick<SearchProgress, 'done' | 'budget' | 'best' | 'failed'>,
  width = 30,
): string {
  const filled = Math.round((width * p.done) / Math.max(1, p.budget));
  const best = p.best ? ` best ${pct(accuracyOf(p.best)!)}` : '';
  const failed = p.failed ? ` (${p.failed} failed)` : '';
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.budget}${best}${failed}`;
}
