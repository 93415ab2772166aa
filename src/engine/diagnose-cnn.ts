/**
 * Where does the integer conv trainer depart from float32? Trains a v2 spec with the integer CPU
 * trainer and, every `--every` steps, compares its gradient with the float32 gradient at the SAME
 * weights (the integer ones / 2^24) on the same batch, per weight layer: cosine, norm ratio, the
 * operand shifts (x, e, w) of that step, how much of the error operand rounds to zero, and the
 * saturation counts. A float32 trainer runs beside it on the same data order (its own weights) for
 * the loss curves. docs/ARITHMETIC.md, "Conv quality: diagnosis", reports what this found.
 *
 *   npx tsx src/engine/diagnose-cnn.ts [SPEC.json] [--steps 200] [--every 25]
 *
 * Without a spec file it uses c8k3·mp·c16k3·mp·flatten (classifier), MNIST, batch 32, lr 0.05.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DATASETS } from '../data/catalog.ts';
import { loadDataset } from '../data/node.ts';
import { isV2, parseAnyTaskSpec, type TaskSpecV2 } from '../protocol/spec.ts';
import { floatCnnLossAndGradient, trainFloatCnn } from './float-reference.ts';
import { maxAbs, quantShift } from './ops/quantize.ts';
import type { CpuProgram } from './program-cpu.ts';
import { cosine, norm } from './similarity.ts';
import { CpuTrainer } from './train-cpu.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { steps: { type: 'string', default: '200' }, every: { type: 'string', default: '25' } },
});

const DEFAULT_SPEC = {
  v: 2,
  dataset: { name: 'mnist', sha256: DATASETS.mnist.sha256 },
  split: { seed: 1, validation: 2000 },
  model: {
    input: { channels: 1, height: 28, width: 28 },
    classes: 10,
    layers: [
      { op: 'conv', channels: 8, kernel: 3, stride: 1, activation: 'relu', residual: false },
      { op: 'maxpool' },
      { op: 'conv', channels: 16, kernel: 3, stride: 1, activation: 'relu', residual: false },
      { op: 'maxpool' },
      { op: 'flatten' },
    ],
  },
  training: {
    optimizer: 'sgd',
    batch: 32,
    steps: 200,
    seed: 1,
    learningRateQ16: 3277,
    momentumQ16: 58982,
    weightDecayQ24: 0,
  },
  checkpointEvery: 50,
};

const raw = positionals[0] ? JSON.parse(readFileSync(positionals[0], 'utf8')) : DEFAULT_SPEC;
const steps = Number(values.steps);
const every = Number(values.every);
raw.training.steps = steps;
const spec = parseAnyTaskSpec(raw);
if (!isV2(spec)) throw new Error('diagnose-cnn takes a v2 (conv) spec');
const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);

const trainer = new CpuTrainer(spec, dataset);
// The program's buffers, to read the step's tensors (z, gz, max-abs slots) after computeGradients.
const cpu = (trainer as unknown as { cpu: CpuProgram }).cpu;
const { layers } = trainer.plan.model;

/** The stage index of each weight layer (the buffers z<i>, gz<i> are named by stage). */
function weightStageIndices(s: TaskSpecV2): number[] {
  const out: number[] = [];
  s.model.layers.forEach((l, i) => {
    if (l.op === 'conv' || l.op === 'dense') out.push(i);
  });
  out.push(s.model.layers.length);
  return out;
}
const stageOf = weightStageIndices(spec);

/** The operand shift of a stage's input: from the max |h| of the buffer below it (the pixels: 9). */
function inputShift(stage: number): number {
  for (let j = stage - 1; j >= 0; j--) {
    if (!cpu.arrays.has(`h${j}`)) continue; // an un-transposed flatten aliases the tensor below
    const h = cpu.get(`h${j}`) as Int32Array;
    return quantShift(maxAbs(h, h.length));
  }
  return 9;
}

function report(t: number): void {
  const maxes = (cpu.get('maxes') as Uint32Array).slice();
  const totals = trainer.computeGradients();
  const intGrad = trainer.gradients;
  const batch = trainer.plan.batchIndices(t);
  const w = Float32Array.from(trainer.params, (q) => q / 2 ** 24);
  const float = floatCnnLossAndGradient(spec as TaskSpecV2, dataset, w, batch);
  const intLoss = totals.lossQ16 / 2 ** 16 / spec.training.batch;
  console.log(
    `step ${t}: loss int ${intLoss.toFixed(4)} float-at-int-weights ${float.loss.toFixed(4)}, batch acc ${totals.correct}/${spec.training.batch}`,
  );
  for (const l of layers) {
    const gi = Array.from(intGrad.subarray(l.wOffset, l.wOffset + l.K * l.N), (q) => q / 2 ** 24);
    const gf = float.grad.subarray(l.wOffset, l.wOffset + l.K * l.N);
    const bi = Array.from(intGrad.subarray(l.bOffset, l.bOffset + l.N), (q) => q / 2 ** 24);
    const bf = float.grad.subarray(l.bOffset, l.bOffset + l.N);
    const wv = w.subarray(l.wOffset, l.wOffset + l.K * l.N);
    const gz = cpu.get(`gz${stageOf[l.index]}`) as Int32Array;
    const rows = gz.length / l.N;
    let gzMax = 0;
    let small = 0; // |gz| below 2^se / 2: rounds to 0 more often than not
    for (let i = 0; i < gz.length; i++) gzMax = Math.max(gzMax, Math.abs(gz[i]));
    const se = quantShift(gzMax);
    for (let i = 0; i < gz.length; i++) if (Math.abs(gz[i]) < 2 ** se / 2) small++;
    let nonzero = 0;
    let tiny = 0; // nonzero gz whose Q24 magnitude is < 16: its own fixed-point resolution is coarse
    for (let i = 0; i < gz.length; i++) {
      if (gz[i] !== 0) nonzero++;
      if (gz[i] !== 0 && Math.abs(gz[i]) < 16) tiny++;
    }
    const sx = inputShift(stageOf[l.index]);
    const sw = quantShift(maxes[4 * l.index + 2]);
    console.log(
      `  W${l.index} ${l.kind} ${l.K}x${l.N}: cos ${cosine(gi, gf).toFixed(4)} |g| int/float ${(norm(gi) / norm(gf)).toFixed(3)}` +
        ` bias cos ${cosine(bi, bf).toFixed(4)} ratio ${(norm(bi) / norm(bf)).toFixed(3)} | |W| ${norm(wv).toFixed(3)} max ${(maxes[4 * l.index + 2] / 2 ** 24).toFixed(3)}` +
        ` | sx ${sx} sw ${sw} se ${se} | gz rows ${rows} max ${gzMax} nonzero ${((100 * nonzero) / gz.length).toFixed(1)}% →0 ${((100 * small) / gz.length).toFixed(1)}% tiny ${((100 * tiny) / gz.length).toFixed(2)}%`,
    );
  }
}

const started = performance.now();
const intLosses: number[] = [];
while (trainer.step < steps) {
  if (trainer.step % every === 0) report(trainer.step);
  intLosses.push(trainer.runStep().lossQ16 / 2 ** 16 / spec.training.batch);
}
const intSeconds = (performance.now() - started) / 1000;
const v = trainer.validate();
const floatStart = performance.now();
const f = trainFloatCnn(spec, dataset);
const floatSeconds = (performance.now() - floatStart) / 1000;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (let from = 0; from < steps; from += every) {
  const to = Math.min(steps, from + every);
  console.log(
    `steps ${from}-${to - 1}: mean loss int ${mean(intLosses.slice(from, to)).toFixed(4)} float ${mean(f.losses.slice(from, to)).toFixed(4)}`,
  );
}
const samples = steps * spec.training.batch;
console.log(
  `validation: int ${v.valCorrect}/${v.valCount} (${((100 * v.valCorrect) / v.valCount).toFixed(2)}%), float ${f.valCorrect}/${f.valCount} (${((100 * f.valCorrect) / f.valCount).toFixed(2)}%)` +
    ` | int ${(samples / intSeconds).toFixed(0)} samples/s incl. diagnostics, float ${(samples / floatSeconds).toFixed(0)} samples/s`,
);
