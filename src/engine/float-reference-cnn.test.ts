/**
 * The float32 conv trainer (the quality comparison for v2 specs): its dense path equals the v1 float
 * trainer exactly, and its gradients (conv with stride and padding, residual conv, max-pool, average
 * pool, flatten, dense) match central finite differences of its own loss.
 */
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { parseTaskSpec, type TaskSpecV2, TaskSpecV2Schema } from '../protocol/spec.ts';
import { floatCnnLossAndGradient, trainFloatReference } from './float-reference.ts';
import { initialParams, trainingPlan } from './plan.ts';

const blobs = await loadDataset('blobs');

const base = {
  dataset: { name: 'blobs', sha256: blobs.sha256 },
  split: { seed: 3, validation: 128 },
  training: {
    optimizer: 'sgd',
    batch: 16,
    steps: 20,
    seed: 5,
    learningRateQ16: 4096,
    momentumQ16: 52429,
    weightDecayQ24: 1678,
  },
  checkpointEvery: 10,
} as const;

const v2 = (layers: unknown[]): TaskSpecV2 =>
  TaskSpecV2Schema.parse({
    ...base,
    v: 2,
    model: { input: { channels: 1, height: 8, width: 8 }, classes: 4, layers },
  });

describe('float32 conv trainer', () => {
  it('equals the v1 float trainer on a flatten + dense model', () => {
    const v1 = parseTaskSpec({
      ...base,
      v: 1,
      model: {
        inputs: 64,
        classes: 4,
        hidden: [
          { units: 32, activation: 'relu' },
          { units: 32, activation: 'gelu', residual: true },
        ],
      },
    });
    const conv = v2([
      { op: 'flatten' },
      { op: 'dense', units: 32, activation: 'relu' },
      { op: 'dense', units: 32, activation: 'gelu', residual: true },
    ]);
    const a = trainFloatReference(v1, blobs);
    const b = trainFloatReference(conv, blobs);
    expect(b.valCorrect).toBe(a.valCorrect);
    expect(b.losses).toHaveLength(20);
    for (const [i, l] of b.losses.entries()) expect(l).toBeCloseTo(a.losses[i], 6);
    expect(b.valCorrect / b.valCount).toBeGreaterThan(0.5);
  });

  it.each([
    [
      'conv stride 2, residual conv, max-pool, flatten, dense',
      [
        { op: 'conv', channels: 4, kernel: 3, stride: 2, activation: 'gelu' },
        { op: 'conv', channels: 4, kernel: 5, stride: 1, activation: 'gelu', residual: true },
        { op: 'maxpool' },
        { op: 'flatten' },
        { op: 'dense', units: 8, activation: 'gelu' },
      ],
    ],
    [
      'conv 1×1, conv 3×3, global average pool',
      [
        { op: 'conv', channels: 3, kernel: 1, stride: 1, activation: 'gelu' },
        { op: 'conv', channels: 5, kernel: 3, stride: 1, activation: 'leaky_relu' },
        { op: 'gap' },
      ],
    ],
  ])('has the gradient of its loss: %s', (_, layers) => {
    const spec = v2(layers);
    const indices = trainingPlan(spec, blobs).batchIndices(0);
    // Start from the engine's initial weights with non-zero biases, so every bias gets a gradient.
    const params = Float32Array.from(initialParams(spec), (q, i) => q / 2 ** 24 + 0.01 * Math.sin(i));
    const { grad } = floatCnnLossAndGradient(spec, blobs, params, indices);
    const eps = 1e-2;
    let checked = 0;
    for (let i = 0; i < params.length; i += Math.max(1, Math.floor(params.length / 60))) {
      const at = (d: number) => {
        const p = params.slice();
        p[i] += d;
        return floatCnnLossAndGradient(spec, blobs, p, indices).loss;
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(fd - grad[i])).toBeLessThan(2e-3 + 0.05 * Math.abs(fd));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
    expect(grad.some((x) => x !== 0)).toBe(true);
  });
});

describe('float32 conv forward', () => {
  it('is the direct convolution of the shared layout (W[(ic·k + ky)·k + kx][oc], zero padding, channel-major flatten)', () => {
    const spec = v2([
      { op: 'conv', channels: 3, kernel: 3, stride: 2, activation: 'leaky_relu' },
      { op: 'maxpool' },
      { op: 'flatten' },
    ]);
    const indices = Uint32Array.from([0, 7, 42]);
    const n = 1 * 9 * 3 + 3 + 3 * 2 * 2 * 4 + 4;
    const params = Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(1.7 * i + 0.2));
    const { loss } = floatCnnLossAndGradient(spec, blobs, params, indices);
    let total = 0;
    for (const ex of indices) {
      const x = (iy: number, ix: number) =>
        iy < 0 || iy >= 8 || ix < 0 || ix >= 8 ? 0 : (blobs.pixels[ex * 64 + iy * 8 + ix] >> 1) / 128;
      // conv 3×3 stride 2, pad 1: 8×8 → 4×4, then leaky ReLU, then 2×2 max-pool → 2×2.
      const conv = (oc: number, oy: number, ox: number) => {
        let z = params[27 + oc];
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++)
            z += x(2 * oy - 1 + ky, 2 * ox - 1 + kx) * params[(ky * 3 + kx) * 3 + oc];
        return z >= 0 ? z : z / 8;
      };
      const flat: number[] = [];
      for (let oc = 0; oc < 3; oc++)
        for (let py = 0; py < 2; py++)
          for (let px = 0; px < 2; px++)
            flat.push(
              Math.max(
                conv(oc, 2 * py, 2 * px),
                conv(oc, 2 * py, 2 * px + 1),
                conv(oc, 2 * py + 1, 2 * px),
                conv(oc, 2 * py + 1, 2 * px + 1),
              ),
            );
      const logits = [0, 1, 2, 3].map(
        (c) => params[30 + 48 + c] + flat.reduce((s, v, k) => s + v * params[30 + k * 4 + c], 0),
      );
      const m = Math.max(...logits);
      total += Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0)) - (logits[blobs.labels[ex]] - m);
    }
    expect(loss).toBeCloseTo(total / indices.length, 5);
  });
});
