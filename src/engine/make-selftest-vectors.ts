/**
 * Regenerates selftest-vectors.json from the CPU reference: `npx tsx src/engine/make-selftest-vectors.ts`.
 * Only run it after a deliberate change to the arithmetic contract: the pinned digests are what
 * every device's self-test (and the CPU reference on every JS engine) must reproduce.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DATASETS } from '../data/catalog.ts';
import { loadDataset } from '../data/node.ts';
import { parseAnyTaskSpec, parseTaskSpec, type TaskSpec, type TaskSpecV2 } from '../protocol/spec.ts';
import { trainCpu } from './train-cpu.ts';

const blobs = { name: 'blobs', sha256: DATASETS.blobs.sha256 };
const base = (
  hidden: TaskSpec['model']['hidden'],
  training: Partial<TaskSpec['training']>,
  every = 4,
): TaskSpec =>
  parseTaskSpec({
    v: 1,
    dataset: blobs,
    split: { seed: 7, validation: 128 },
    model: { inputs: 64, classes: 4, hidden },
    training: {
      optimizer: 'sgd',
      batch: 16,
      steps: 12,
      seed: 1,
      learningRateQ16: 4915,
      momentumQ16: 58982,
      weightDecayQ24: 0,
      ...training,
    },
    checkpointEvery: every,
  });

const cases: { name: string; spec: TaskSpec | TaskSpecV2 }[] = [
  { name: 'relu-16', spec: base([{ units: 16, activation: 'relu', residual: false }], {}) },
  {
    name: 'gelu-32-residual',
    spec: base(
      [
        { units: 32, activation: 'gelu', residual: false },
        { units: 32, activation: 'gelu', residual: true },
      ],
      { seed: 2, batch: 24, steps: 10, weightDecayQ24: 1678 },
      3,
    ),
  },
  {
    name: 'leaky-hardtanh',
    spec: base(
      [
        { units: 24, activation: 'leaky_relu', residual: false },
        { units: 12, activation: 'hardtanh', residual: false },
      ],
      { seed: 3, batch: 8, steps: 15, momentumQ16: 0, learningRateQ16: 13107 },
      5,
    ),
  },
  {
    name: 'input-residual',
    spec: base([{ units: 64, activation: 'relu', residual: true }], { seed: 4, steps: 9 }, 9),
  },
];

/** Conv (spec v2) vectors: blobs read as 1×8×8 images, so the self-test needs no download. */
const conv = (layers: TaskSpecV2['model']['layers'], seed: number, every = 4) =>
  parseAnyTaskSpec({
    v: 2,
    dataset: blobs,
    split: { seed: 7, validation: 128 },
    model: { input: { channels: 1, height: 8, width: 8 }, classes: 4, layers },
    training: {
      optimizer: 'sgd',
      batch: 16,
      steps: 12,
      seed,
      learningRateQ16: 4915,
      momentumQ16: 58982,
      weightDecayQ24: 0,
    },
    checkpointEvery: every,
  });

cases.push(
  {
    name: 'conv-pool-flatten',
    spec: conv(
      [
        { op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'relu', residual: false },
        { op: 'maxpool' },
        { op: 'conv', channels: 6, kernel: 3, stride: 1, activation: 'leaky_relu', residual: false },
        { op: 'flatten' },
      ],
      5,
    ),
  },
  {
    name: 'conv-stride-residual-gap',
    spec: conv(
      [
        { op: 'conv', channels: 4, kernel: 5, stride: 2, activation: 'gelu', residual: false },
        { op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'hardtanh', residual: true },
        { op: 'gap' },
      ],
      6,
      3,
    ),
  },
);

const dataset = await loadDataset('blobs');
const vectors = [];
for (const { name, spec } of cases) {
  const r = await trainCpu(spec, dataset);
  vectors.push({
    name,
    spec,
    expected: {
      taskId: r.taskId,
      valCorrect: r.valCorrect,
      weightsHash: r.weightsHash,
      traceRoot: r.traceRoot,
      digest: r.digest,
    },
  });
}
const path = fileURLToPath(new URL('./selftest-vectors.json', import.meta.url));
writeFileSync(path, `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors to ${path}`);
