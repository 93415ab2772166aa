/**
 * The reference CNN's quality figure (issue 13, "Quality"): trains specs/reference-cnn.json (or SPEC)
 * with the integer engine and with the float32 trainer of the same architecture, init, data order and
 * steps, and prints both validation accuracies and their difference.
 *
 *   npx tsx src/engine/quality-cnn.ts [SPEC.json] [--backend cpu|webgpu] [--steps N] [--no-float]
 *   npx tsx src/engine/quality-cnn.ts [SPEC.json] --speed N
 *
 * `--speed N` only times N steps (after one untimed step) on the CPU reference and on WebGPU in Node,
 * prints samples/s of each and whether the parameters after step N + 1 are identical.
 *
 * The integer result is bit-identical on either backend (the WebGPU one needs a GPU or SwiftShader:
 * VK_ICD_FILENAMES, docs/KERNELS.md). `--steps` overrides the spec's steps (a shorter probe).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/node.ts';
import { type AnyTaskSpec, isV2, parseAnyTaskSpec } from '../protocol/spec.ts';
import { trainFloatReference } from './float-reference.ts';
import { train } from './train.ts';
import { CpuTrainer } from './train-cpu.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: 'string', default: 'cpu' },
    steps: { type: 'string' },
    'no-float': { type: 'boolean', default: false },
    speed: { type: 'string' },
  },
});
const file = positionals[0] ?? new URL('../../specs/reference-cnn.json', import.meta.url).pathname;
const raw = JSON.parse(readFileSync(file, 'utf8'));
if (values.steps) raw.training.steps = Number(values.steps);
const spec = parseAnyTaskSpec(raw);
if (!isV2(spec)) console.warn('note: a v1 (MLP) spec');
const backend = values.backend;
if (backend !== 'cpu' && backend !== 'webgpu')
  throw new Error(`--backend must be cpu or webgpu, got '${backend}'`);
const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
const pct = (correct: number, count: number) => ((100 * correct) / count).toFixed(2);

/** Times `steps` steps (after one untimed step) on both backends; the WebGPU module loads on demand. */
async function compareSpeed(steps: number): Promise<void> {
  const timed: AnyTaskSpec = { ...spec, training: { ...spec.training, steps: steps + 1 } };
  const B = spec.training.batch;
  const cpu = new CpuTrainer(timed, dataset);
  cpu.runStep();
  let started = performance.now();
  while (cpu.step < steps + 1) cpu.runStep();
  const cpuRate = (B * steps) / ((performance.now() - started) / 1000);
  const { GpuTrainer, defaultGpuSession } = await import('./webgpu/train.ts');
  const { contextFromSession } = await import('./webgpu/context.ts');
  const gpu = await GpuTrainer.create(await contextFromSession(await defaultGpuSession()), timed, dataset);
  await gpu.runPipelined(1);
  started = performance.now();
  await gpu.runPipelined(steps + 1);
  const gpuRate = (B * steps) / ((performance.now() - started) / 1000);
  const { params } = await gpu.state();
  const same = params.length === cpu.params.length && params.every((v, i) => v === cpu.params[i]);
  console.log(
    `${steps} timed steps of ${B}: CPU reference ${cpuRate.toFixed(1)} samples/s, WebGPU (Node) ${gpuRate.toFixed(1)} samples/s;` +
      ` parameters after step ${steps + 1} identical: ${same}`,
  );
}

if (values.speed) {
  await compareSpeed(Number(values.speed));
  process.exit(0);
}

let started = performance.now();
const int = await train(spec, dataset, { backend });
const intSeconds = (performance.now() - started) / 1000;
const intAcc = pct(int.valCorrect, int.valCount);
console.log(
  `integer (${backend}): ${int.valCorrect}/${int.valCount} = ${intAcc}% | ${spec.training.steps} steps | ${intSeconds.toFixed(0)} s | digest ${int.digest}`,
);
if (!values['no-float']) {
  started = performance.now();
  const float = trainFloatReference(spec, dataset);
  const floatSeconds = (performance.now() - started) / 1000;
  const floatAcc = pct(float.valCorrect, float.valCount);
  console.log(
    `float32: ${float.valCorrect}/${float.valCount} = ${floatAcc}% | ${floatSeconds.toFixed(0)} s` +
      ` | integer − float32 = ${(Number(intAcc) - Number(floatAcc)).toFixed(2)} points`,
  );
}
