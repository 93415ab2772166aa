import { writeFile } from 'node:fs/promises';
import { loadDataset } from '../../data/node.ts';
import { splitIndices } from '../../engine/plan.ts';
import { architectureOf, describeArchitecture } from '../../nas/space.ts';
import { onnxAccuracy } from '../../onnx/evaluate.ts';
import { trainAndExport } from '../../onnx/export.ts';
import type { WeightMode } from '../../onnx/mlp.ts';
import { taskIdOf } from '../../protocol/spec.ts';
import { backendOption, type Command, parseOptions, readSpecFile } from '../command.ts';

const help = `usage: cambrian export --spec FILE --out model.onnx [--backend cpu|webgpu]
                       [--weights int8|master] [--no-check] [--json]

Trains the task in FILE (a task spec, JSON) and writes the trained model as ONNX (opset 13):
input "pixels" float32 [N, inputs] with intensities in [0, 1], output "logits" float32 [N, classes].
See docs/ONNX.md. Afterwards it runs the ONNX model with onnxruntime-web (wasm) on the spec's
validation split and prints its accuracy beside the engine's (skip with --no-check).

  --weights  int8 (default): weights rounded as the engine validates; master: raw Q24 master weights
  --json     print { result, out, bytes, onnxAccuracy } as JSON`;

export const command: Command = {
  name: 'export',
  summary: 'train a task and export the model as ONNX',
  help,
  async run(argv) {
    const opts = parseOptions(argv, {
      spec: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      weights: { type: 'string', default: 'int8' },
      'no-check': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (!opts.spec || !opts.out) throw new Error('--spec FILE and --out FILE are required');
    const backend = backendOption(opts.backend);
    const weights = opts.weights as WeightMode;
    if (weights !== 'int8' && weights !== 'master') throw new Error('--weights must be int8 or master');
    const spec = await readSpecFile(opts.spec);
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    if (!opts.json) console.error(`training ${taskIdOf(spec)} (${spec.training.steps} steps, ${backend})…`);
    const { result, onnx } = await trainAndExport(spec, dataset, { backend, weights });
    await writeFile(opts.out, onnx);
    let check: { correct: number; count: number } | undefined;
    if (!opts['no-check'])
      check = await onnxAccuracy(onnx, dataset, splitIndices(spec, dataset.count).validation);
    let label = `${spec.model.hidden.map((h) => `${h.units}${h.activation}`).join('-')}`;
    try {
      label = describeArchitecture(architectureOf(spec));
    } catch {
      // Off-grid specs (not from the search space) keep the short label.
    }
    if (opts.json) {
      console.log(
        JSON.stringify({ result, out: opts.out, bytes: onnx.length, onnxAccuracy: check }, null, 2),
      );
      return 0;
    }
    const pct = (c: number, n: number) => `${((100 * c) / n).toFixed(2)}% (${c}/${n})`;
    console.log(`model     ${label}`);
    console.log(`task id   ${result.taskId}`);
    console.log(`digest    ${result.digest}`);
    console.log(`engine    validation accuracy ${pct(result.valCorrect, result.valCount)}`);
    if (check)
      console.log(`onnx      validation accuracy ${pct(check.correct, check.count)} (onnxruntime-web, wasm)`);
    console.log(`wrote     ${opts.out} (${onnx.length} bytes, opset 13, input "pixels", output "logits")`);
    return 0;
  },
};
