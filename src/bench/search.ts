/**
 * `cambrian bench search`: strategies compared at equal budget on the fast track (docs/SEARCH.md).
 *
 * 1. Regularized evolution against random search: for each seed, both run `--budget` full-budget
 *    evaluations (one at a time, so each run is deterministic); we report the mean best validation
 *    accuracy after 10, 25, 50, … evaluations and how many seeds each wins.
 * 2. ASHA against full-budget random search: for each seed, ASHA (bottom rung max(1, steps/9),
 *    factor 3, top rung the full steps) runs until its best full-budget result reaches the best accuracy that seed's random
 *    search found with its whole budget; we report the CPU-seconds of training each needed.
 *
 * Every training runs in this process on the CPU reference engine; its cost is the process CPU time
 * (user + system) of that train() call. Trainings are cached by task id (equal architecture, steps
 * and seed give equal results): a cache hit is charged the CPU time its first run measured, so the
 * accounting is as if every evaluation had been trained.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/node.ts';
import type { Dataset } from '../engine/types.ts';
import { formatTable, specOf } from '../nas/search.ts';
import { describeAny } from '../nas/spaces.ts';
import {
  ashaRungs,
  createStrategy,
  type Outcome,
  type Strategy,
  type StrategyConfig,
} from '../nas/strategy.ts';
import { FAST_TRACK, spaceOf, type Track, trackByName } from '../nas/tracks.ts';
import { trainAny } from '../nas/train-any.ts';
import { taskIdOf } from '../protocol/spec.ts';

export const help = `usage: cambrian bench search [--seeds N] [--budget N] [--track ${FAST_TRACK}|mnist]
                            [--steps N] [--max-params N] [--population P] [--sample S]
                            [--asha-cap N | --no-asha] [--out FILE]

Compares regularized evolution with random search (mean best validation accuracy over N seeds at
equal budget) and measures the CPU-seconds ASHA needs to match full-budget random search.
Defaults: 10 seeds, budget 100, track ${FAST_TRACK} with its steps and parameter budget, population 20,
sample 5, ASHA capped at 4× budget trainings (--no-asha skips the ASHA part). Writes JSON to
bench-results/search.json (or --out). --track mnist-cnn runs the conv space (v2 specs).`;

interface Evaluated {
  outcome: Outcome;
  cpuSeconds: number;
}

/** Trains specs in this process, caching by task id and charging cached hits their measured cost. */
class Evaluator {
  private readonly cache = new Map<string, Evaluated>();
  trainings = 0;
  hits = 0;
  private top?: { architecture: string; valCorrect: number; valCount: number; steps: number; taskId: string };

  constructor(
    private readonly track: Track,
    private readonly dataset: Dataset,
    private readonly trainingSeed: number,
  ) {}

  async evaluate(arch: Parameters<typeof specOf>[1]['arch'], steps: number): Promise<Evaluated> {
    const spec = specOf(this.track, { arch, steps }, this.trainingSeed);
    const id = taskIdOf(spec);
    const cached = this.cache.get(id);
    if (cached) {
      this.hits++;
      return cached;
    }
    const before = process.cpuUsage();
    const result = await trainAny(spec, this.dataset, { backend: 'cpu' });
    const used = process.cpuUsage(before);
    const evaluated = {
      outcome: { valCorrect: result.valCorrect, valCount: result.valCount, valLoss: result.valLoss },
      cpuSeconds: (used.user + used.system) / 1e6,
    };
    this.trainings++;
    this.cache.set(id, evaluated);
    const t = this.top;
    if (!t || result.valCorrect * t.valCount > t.valCorrect * result.valCount)
      this.top = {
        architecture: describeAny(arch),
        valCorrect: result.valCorrect,
        valCount: result.valCount,
        steps,
        taskId: id,
      };
    return evaluated;
  }

  /** The most accurate training so far (any strategy, any fidelity). */
  best() {
    return this.top;
  }
}

interface RunTrace {
  /** Best full-budget accuracy after each evaluation (index i: after i + 1 evaluations). */
  bestAfter: number[];
  /** Cumulative CPU-seconds after each evaluation. */
  cpuAfter: number[];
}

/** Runs a strategy one evaluation at a time until it stops proposing or `stop` says so. */
async function drive(
  strategy: Strategy,
  evaluator: Evaluator,
  fullSteps: number,
  stop: (bestFull: number) => boolean = () => false,
): Promise<RunTrace> {
  const trace: RunTrace = { bestAfter: [], cpuAfter: [] };
  let bestFull = 0;
  let cpu = 0;
  for (let p = strategy.ask(); p; p = strategy.ask()) {
    const { outcome, cpuSeconds } = await evaluator.evaluate(p.arch, p.steps);
    strategy.tell(p.trialId, outcome);
    cpu += cpuSeconds;
    if (p.steps === fullSteps) bestFull = Math.max(bestFull, outcome.valCorrect / outcome.valCount);
    trace.bestAfter.push(bestFull);
    trace.cpuAfter.push(cpu);
    if (stop(bestFull)) break;
  }
  return trace;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stderr = (xs: number[]) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) / xs.length);
};
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const pm = (xs: number[], f = pct) => `${f(mean(xs))} ± ${f(stderr(xs))}`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      seeds: { type: 'string', default: '10' },
      budget: { type: 'string', default: '100' },
      track: { type: 'string', default: FAST_TRACK },
      population: { type: 'string', default: '20' },
      sample: { type: 'string', default: '5' },
      'asha-cap': { type: 'string' },
      'no-asha': { type: 'boolean', default: false },
      steps: { type: 'string' },
      'max-params': { type: 'string' },
      out: { type: 'string', default: 'bench-results/search.json' },
    },
  });
  const seeds = Number(values.seeds);
  const budget = Number(values.budget);
  const population = Number(values.population);
  const sample = Number(values.sample);
  const ashaCap = values['asha-cap'] ? Number(values['asha-cap']) : 4 * budget;
  const noAsha = values['no-asha'];
  const track = trackByName(values.track);
  const steps = values.steps ? Number(values.steps) : track.steps;
  const space = spaceOf(track, values['max-params'] ? Number(values['max-params']) : track.maxParams);
  const trainingSeed = 1;
  const minSteps = Math.max(1, Math.round(steps / 9));
  const evaluator = new Evaluator(
    { ...track, steps },
    await loadDataset(track.name, track.sha256),
    trainingSeed,
  );
  const started = performance.now();
  console.error(
    `bench search: ${track.id}, ${steps} steps, ${space.maxParams} max params, ${seeds} seeds, budget ${budget}, evolution P=${population} S=${sample}`,
  );

  const perSeed: {
    seed: number;
    random: RunTrace;
    evolution: RunTrace;
    asha: RunTrace & { matched: boolean; cpuToMatch: number; jobs: number };
    randomCpuToBest: number;
  }[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const make = (config: StrategyConfig) => createStrategy(config, space);
    const random = await drive(make({ kind: 'random', seed, budget, steps }), evaluator, steps);
    const evolution = await drive(
      make({ kind: 'evolution', seed, budget, steps, populationSize: population, sampleSize: sample }),
      evaluator,
      steps,
    );
    const target = random.bestAfter[budget - 1];
    const ashaStrategy = make({
      kind: 'asha',
      seed,
      budget: ashaCap,
      minSteps,
      maxSteps: steps,
    });
    const asha = noAsha
      ? { bestAfter: [], cpuAfter: [] }
      : await drive(ashaStrategy, evaluator, steps, (best) => best >= target);
    const matched = asha.bestAfter[asha.bestAfter.length - 1] >= target;
    const randomCpuToBest = random.cpuAfter[random.bestAfter.indexOf(target)];
    perSeed.push({
      seed,
      random,
      evolution,
      asha: {
        ...asha,
        matched,
        cpuToMatch: asha.cpuAfter[asha.cpuAfter.length - 1],
        jobs: asha.cpuAfter.length,
      },
      randomCpuToBest,
    });
    console.error(
      `seed ${seed}: random ${pct(target)}, evolution ${pct(evolution.bestAfter[budget - 1])}` +
        (noAsha
          ? ` (${random.cpuAfter[budget - 1].toFixed(1)} + ${evolution.cpuAfter[budget - 1].toFixed(1)} CPU-s)`
          : `, ASHA ${matched ? 'matched' : 'did not match'} after ${asha.cpuAfter.length} trainings ` +
            `(${asha.cpuAfter[asha.cpuAfter.length - 1].toFixed(1)} CPU-s vs random ${random.cpuAfter[budget - 1].toFixed(1)} CPU-s)`),
    );
  }

  const marks = [10, 25, 50, 100, 150, 200, 300].filter((m) => m <= budget);
  if (!marks.includes(budget)) marks.push(budget);
  const curve = marks.map((m) => ({
    evaluations: m,
    random: perSeed.map((s) => s.random.bestAfter[m - 1]),
    evolution: perSeed.map((s) => s.evolution.bestAfter[m - 1]),
  }));
  const final = curve[curve.length - 1];
  const evoWins = perSeed.filter(
    (s) => s.evolution.bestAfter[budget - 1] > s.random.bestAfter[budget - 1],
  ).length;
  const ties = perSeed.filter(
    (s) => s.evolution.bestAfter[budget - 1] === s.random.bestAfter[budget - 1],
  ).length;
  const randomCpu = perSeed.map((s) => s.random.cpuAfter[budget - 1]);
  const ashaCpu = perSeed.map((s) => s.asha.cpuToMatch);
  const matchedSeeds = perSeed.filter((s) => s.asha.matched).length;

  console.log(
    `\nRegularized evolution vs random search: ${track.id}, ${steps} steps per evaluation, ${seeds} seeds`,
  );
  console.log('(mean best validation accuracy ± standard error over seeds)\n');
  console.log(
    formatTable(
      ['evaluations', 'random search', 'regularized evolution'],
      curve.map((c) => [c.evaluations, pm(c.random), pm(c.evolution)]),
    ),
  );
  const diffs = perSeed.map((s) => s.evolution.bestAfter[budget - 1] - s.random.bestAfter[budget - 1]);
  console.log(
    `\nevolution − random, paired by seed: ${pm(diffs)}; evolution better on ${evoWins} of ${seeds} seeds, equal on ${ties}`,
  );
  if (!noAsha) printAsha();
  function printAsha() {
    console.log(
      `\nASHA (rungs of ${ashaRungs(minSteps, steps, 3).join('/')} steps, η = 3) to match full-budget random search\n`,
    );
    console.log(
      formatTable(
        ['', 'CPU-seconds (mean ± s.e.)', 'trainings (mean)'],
        [
          ['random search, whole budget', pm(randomCpu, (x) => x.toFixed(1)), budget],
          [
            'random search, until its best',
            pm(
              perSeed.map((s) => s.randomCpuToBest),
              (x) => x.toFixed(1),
            ),
            '—',
          ],
          [
            'ASHA, until it matches',
            pm(ashaCpu, (x) => x.toFixed(1)),
            mean(perSeed.map((s) => s.asha.jobs)).toFixed(1),
          ],
        ],
      ),
    );
    console.log(
      `\nASHA matched random search's best on ${matchedSeeds} of ${seeds} seeds (cap ${ashaCap} trainings);`,
    );
    console.log(`ratio of mean CPU-seconds ASHA / random = ${(mean(ashaCpu) / mean(randomCpu)).toFixed(3)}`);
  }
  const top = evaluator.best();
  if (top)
    console.log(
      `\nbest architecture trained: ${top.architecture} — ${top.valCorrect}/${top.valCount} (${pct(top.valCorrect / top.valCount)}), task ${top.taskId}`,
    );
  const wall = (performance.now() - started) / 1000;
  console.log(
    `\n${evaluator.trainings} distinct trainings (${evaluator.hits} cache hits), ${wall.toFixed(0)} s wall`,
  );

  const report = {
    track: track.id,
    steps,
    maxParams: space.maxParams,
    seeds,
    budget,
    evolution: { populationSize: population, sampleSize: sample },
    ashaCap: noAsha ? null : ashaCap,
    bestArchitecture: top ?? null,
    curve: curve.map((c) => ({
      evaluations: c.evaluations,
      random: { mean: mean(c.random), stderr: stderr(c.random) },
      evolution: { mean: mean(c.evolution), stderr: stderr(c.evolution) },
    })),
    final: {
      random: final.random,
      evolution: final.evolution,
      pairedDifference: { mean: mean(diffs), stderr: stderr(diffs) },
      evolutionWins: evoWins,
      ties,
    },
    asha: noAsha
      ? null
      : {
          matchedSeeds,
          cpuSeconds: ashaCpu,
          randomCpuSeconds: randomCpu,
          randomCpuSecondsToBest: perSeed.map((s) => s.randomCpuToBest),
          trainings: perSeed.map((s) => s.asha.jobs),
          ratio: mean(ashaCpu) / mean(randomCpu),
        },
    trainings: evaluator.trainings,
    cacheHits: evaluator.hits,
    wallSeconds: wall,
    best: perSeed.map((s) => ({
      seed: s.seed,
      random: s.random.bestAfter[budget - 1],
      evolution: s.evolution.bestAfter[budget - 1],
    })),
  };
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
  console.error(`wrote ${values.out}`);
  return 0;
}
