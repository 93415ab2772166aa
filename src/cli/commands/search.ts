import { availableParallelism } from 'node:os';
import { TrainPool } from '../../nas/pool.ts';
import { formatLeaderboard, progressLine, runSearch } from '../../nas/search.ts';
import { createStrategy, STRATEGIES, type StrategyConfig, type StrategyKind } from '../../nas/strategy.ts';
import { FAST_TRACK, spaceOf, TRACK_NAMES, trackByName } from '../../nas/tracks.ts';
import { backendOption, type Command, intOption, parseOptions } from '../command.ts';

const help = `usage: cambrian search [--strategy evolution|random|asha] [--budget N] [--seed S]
                       [--backend cpu|webgpu] [--parallel P] [--track ${TRACK_NAMES.join('|')}]
                       [--steps N] [--max-params N] [--top K] [--json]

An offline architecture search on this machine: P worker threads train the proposals with the engine.
Progress goes to stderr; at the end it prints the leaderboard (rank, architecture, validation
accuracy, parameters, FLOPs, task id) and the Pareto front of accuracy against parameters.

  --strategy   evolution (regularized/aging evolution, default), random (the control) or asha
               (asynchronous successive halving, rungs of steps/9, steps/3, steps; factor 3)
  --budget     trainings to run (default 20; ASHA promotions count)
  --seed       search seed (default 1): same seed, same proposals when --parallel is 1
  --backend    cpu (default) or webgpu
  --parallel   worker threads (default: available cores)
  --track      mnist (default; MLPs, 300 steps per task), mnist-cnn (conv nets over the same digits,
               v2 specs; 300 steps) or ${FAST_TRACK} (the fast generated track, 3 steps)
  --steps      training steps of a full-budget task (default: the track's)
  --max-params parameter budget of the search space (default: the track's)
  --top        leaderboard rows to print (default 10)
  --json       print the whole report as JSON on stdout instead of tables`;

function strategyConfig(kind: StrategyKind, seed: number, budget: number, steps: number): StrategyConfig {
  switch (kind) {
    case 'random':
      return { kind, seed, budget, steps };
    case 'evolution':
      return {
        kind,
        seed,
        budget,
        steps,
        populationSize: Math.max(2, Math.min(20, Math.floor(budget / 3))),
        sampleSize: Math.max(2, Math.min(5, Math.floor(budget / 10))),
      };
    case 'asha':
      return { kind, seed, budget, minSteps: Math.max(1, Math.round(steps / 9)), maxSteps: steps, eta: 3 };
  }
}

export const command: Command = {
  name: 'search',
  summary: 'run an offline architecture search and print the leaderboard',
  help,
  async run(argv) {
    const opts = parseOptions(argv, {
      strategy: { type: 'string', default: 'evolution' },
      budget: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      parallel: { type: 'string' },
      track: { type: 'string', default: 'mnist' },
      steps: { type: 'string' },
      'max-params': { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const kind = opts.strategy as StrategyKind;
    if (!STRATEGIES.includes(kind)) throw new Error(`--strategy must be one of ${STRATEGIES.join(', ')}`);
    const backend = backendOption(opts.backend);
    const track = trackByName(opts.track);
    const budget = intOption(opts.budget, '--budget', 20, 1);
    const seed = intOption(opts.seed, '--seed', 1, 0);
    const parallel = intOption(opts.parallel, '--parallel', Math.max(1, availableParallelism()), 1);
    const steps = intOption(opts.steps, '--steps', track.steps, 1);
    const top = intOption(opts.top, '--top', 10, 1);
    const space = spaceOf(track, intOption(opts['max-params'], '--max-params', track.maxParams, 1));
    const strategy = createStrategy(strategyConfig(kind, seed, budget, steps), space);

    const pool = new TrainPool(parallel, backend);
    const tty = process.stderr.isTTY;
    let lastDecile = -1;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    console.error(
      `cambrian search: ${kind} on ${track.id}, budget ${budget}, ${parallel} worker thread(s), ${backend}`,
    );
    try {
      const report = await runSearch({
        strategy,
        track: { ...track, steps },
        trainingSeed: seed,
        budget,
        parallel,
        evaluate: (spec) => pool.train(spec),
        signal: abort.signal,
        onProgress: (p) => {
          if (p.error) console.error(`\ntrial ${p.trial.trialId} failed: ${p.error}`);
          const decile = Math.floor((10 * p.done) / budget);
          if (tty) process.stderr.write(`\r${progressLine(p)}`);
          else if (decile !== lastDecile) console.error(progressLine(p));
          lastDecile = decile;
        },
      });
      if (tty) process.stderr.write('\n');
      if (opts.json) {
        console.log(
          JSON.stringify({ ...report, seed, backend, parallel, steps, maxParams: space.maxParams }, null, 2),
        );
      } else {
        console.log(
          `\nLeaderboard (${report.trials} trainings, ${report.trainingSeconds.toFixed(1)} training-seconds, ${report.wallSeconds.toFixed(1)} s wall)\n`,
        );
        console.log(formatLeaderboard(report.leaderboard.slice(0, top)));
        console.log('\nPareto front: validation accuracy against parameters\n');
        console.log(formatLeaderboard(report.pareto));
      }
      return report.leaderboard.length > 0 ? 0 : 1;
    } finally {
      process.off('SIGINT', onSigint);
      await pool.close();
    }
  },
};
