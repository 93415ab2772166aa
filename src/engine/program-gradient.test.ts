/**
 * The COMPILED v2 program's gradient against the float32 gradient at the same weights, per weight
 * layer. ops/conv-gradient.test.ts checks the conv arithmetic composed from the twins by hand; this
 * checks the plan compiler's wiring (which buffer each backward op reads and writes). Before this
 * test a transposed flatten wrote its input gradient to a buffer nobody read, so every conv below
 * it had a zero gradient and never trained (docs/ARITHMETIC.md, "Conv quality: diagnosis").
 */
import { describe, expect, it } from 'vitest';
import { DATASETS } from '../data/catalog.ts';
import { loadDataset } from '../data/node.ts';
import { type Layer, TaskSpecV2Schema } from '../protocol/spec.ts';
import { floatCnnLossAndGradient } from './float-reference.ts';
import { cosine, norm } from './similarity.ts';
import { CpuTrainer } from './train-cpu.ts';

const mnist = await loadDataset('mnist');

const specOf = (layers: Layer[]) =>
  TaskSpecV2Schema.parse({
    v: 2,
    dataset: { name: 'mnist', sha256: DATASETS.mnist.sha256 },
    split: { seed: 1, validation: 2000 },
    model: { input: { channels: 1, height: 28, width: 28 }, classes: 10, layers },
    training: {
      optimizer: 'sgd',
      batch: 32,
      steps: 20,
      seed: 5,
      learningRateQ16: 3277,
      momentumQ16: 58982,
      weightDecayQ24: 0,
    },
    checkpointEvery: 10,
  });

const conv = (channels: number, kernel: number, extra: Partial<Layer> = {}): Layer =>
  ({ op: 'conv', channels, kernel, stride: 1, activation: 'relu', residual: false, ...extra }) as Layer;

const NETS: [string, Layer[]][] = [
  [
    'conv · maxpool · conv · maxpool · flatten (transposed) · dense',
    [
      conv(4, 3),
      { op: 'maxpool' },
      conv(8, 3),
      { op: 'maxpool' },
      { op: 'flatten' },
      { op: 'dense', units: 16, activation: 'relu', residual: false },
    ],
  ],
  ['conv k5 · flatten (act′ through the transpose)', [conv(4, 5, { stride: 2 }), { op: 'flatten' }]],
  [
    'conv · residual conv (leaky) · maxpool · conv stride 2 · gap',
    [
      conv(4, 3),
      conv(4, 3, { residual: true, activation: 'leaky_relu' }),
      { op: 'maxpool' },
      conv(8, 3, { stride: 2 }),
      { op: 'gap' },
    ],
  ],
];

describe('compiled v2 program: gradient vs float32 at the same weights', () => {
  for (const [name, layers] of NETS) {
    it(name, () => {
      const spec = specOf(layers);
      const trainer = new CpuTrainer(spec, mnist);
      // Step 0 and after some training (the gradients then come from a trained classifier too).
      for (const at of [0, 12]) {
        while (trainer.step < at) trainer.runStep();
        trainer.computeGradients();
        const w = Float32Array.from(trainer.params, (q) => q / 2 ** 24);
        const float = floatCnnLossAndGradient(spec, mnist, w, trainer.plan.batchIndices(at));
        for (const l of trainer.plan.model.layers) {
          const range = [l.wOffset, l.bOffset + l.N] as const;
          const int = Array.from(trainer.gradients.subarray(...range), (q) => q / 2 ** 24);
          const ref = float.grad.subarray(...range);
          const where = `step ${at}, layer ${l.index} (${l.kind} ${l.K}×${l.N})`;
          expect(cosine(int, ref), where).toBeGreaterThan(0.98);
          expect(norm(int) / norm(ref), where).toBeGreaterThan(0.9);
          expect(norm(int) / norm(ref), where).toBeLessThan(1.1);
        }
      }
    });
  }
});
