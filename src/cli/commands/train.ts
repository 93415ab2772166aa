import { loadDataset } from '../../data/node.ts';
import { trainAny } from '../../nas/train-any.ts';
import { taskIdOf } from '../../protocol/spec.ts';
import { backendOption, type Command, intOption, parseOptions, readAnySpecFile } from '../command.ts';

const help = `usage: cambrian train --spec FILE [--backend cpu|webgpu] [--json] [--progress-every N]

Trains one microtask (a v1 or v2 task spec, JSON; see docs/SPEC.md) and prints its result: validation
accuracy and loss, weightsHash, traceRoot and the digest a worker would sign. Progress (step, loss)
goes to stderr. The dataset is built on first use (cambrian build-data).

  --backend         cpu (default, the integer reference) or webgpu (Dawn in Node)
  --json            print the TaskResult as JSON on stdout
  --progress-every  report progress every N steps (default 25)`;

export const command: Command = {
  name: 'train',
  summary: 'train one task spec and print its result',
  help,
  async run(argv) {
    const opts = parseOptions(argv, {
      spec: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      json: { type: 'boolean', default: false },
      'progress-every': { type: 'string' },
    });
    if (!opts.spec) throw new Error('--spec FILE is required');
    const backend = backendOption(opts.backend);
    const progressEvery = intOption(opts['progress-every'], '--progress-every', 25, 1);
    const spec = await readAnySpecFile(opts.spec);
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const taskId = taskIdOf(spec);
    console.error(`training ${taskId} on ${backend}: ${spec.training.steps} steps of ${spec.training.batch}`);
    const started = performance.now();
    const result = await trainAny(spec, dataset, {
      backend,
      progressEvery,
      onProgress: (p) =>
        console.error(`  step ${String(p.step).padStart(6)}/${p.steps}  loss ${p.loss.toFixed(4)}`),
    });
    const seconds = (performance.now() - started) / 1000;
    const samplesPerSecond = (spec.training.steps * spec.training.batch) / seconds;
    console.error(
      `done in ${seconds.toFixed(2)} s (${samplesPerSecond.toFixed(0)} training samples/s incl. validation)`,
    );
    if (opts.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    const accuracy = ((100 * result.valCorrect) / result.valCount).toFixed(2);
    const meanLoss = (Number(result.valLoss) / 2 ** 16 / result.valCount).toFixed(4);
    console.log(
      [
        `taskId       ${result.taskId}`,
        `validation   ${result.valCorrect}/${result.valCount} correct (${accuracy}%), mean loss ${meanLoss}`,
        `valLoss      ${result.valLoss} (Q16 sum)`,
        `weightsHash  ${result.weightsHash}`,
        `traceRoot    ${result.traceRoot} (${result.checkpoints.length} checkpoints)`,
        `digest       ${result.digest}`,
      ].join('\n'),
    );
    return 0;
  },
};
