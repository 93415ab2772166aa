import { describe, expect, it } from 'vitest';
import { canonicalSpec, layerShapes, parseAnyTaskSpec, type TaskSpecV2, taskIdOf } from './spec.ts';

const base = {
  v: 2,
  dataset: { name: 'mnist', sha256: `0x${'ab'.repeat(32)}` },
  split: { seed: 1, validation: 2000 },
  model: {
    input: { channels: 1, height: 28, width: 28 },
    classes: 10,
    layers: [
      { op: 'conv', channels: 8, kernel: 3, stride: 1, activation: 'relu' },
      { op: 'conv', channels: 8, kernel: 3, stride: 1, activation: 'relu', residual: true },
      { op: 'maxpool' },
      { op: 'conv', channels: 16, kernel: 5, stride: 2, activation: 'gelu' },
      { op: 'gap' },
      { op: 'dense', units: 32, activation: 'relu' },
    ],
  },
  training: {
    optimizer: 'sgd',
    batch: 32,
    steps: 100,
    seed: 7,
    learningRateQ16: 4915,
    momentumQ16: 58982,
    weightDecayQ24: 0,
  },
  checkpointEvery: 25,
};

describe('task spec v2', () => {
  it('infers every layer shape', () => {
    const spec = parseAnyTaskSpec(base) as TaskSpecV2;
    expect(layerShapes(spec.model)).toEqual([
      { kind: 'image', channels: 8, height: 28, width: 28 },
      { kind: 'image', channels: 8, height: 28, width: 28 },
      { kind: 'image', channels: 8, height: 14, width: 14 },
      { kind: 'image', channels: 16, height: 7, width: 7 },
      { kind: 'flat', units: 16 },
      { kind: 'flat', units: 32 },
    ]);
  });

  it('fills defaults, so equal specs hash equal, and differs from every v1 id', () => {
    const explicit = structuredClone(base);
    (explicit.model.layers[0] as Record<string, unknown>).residual = false;
    expect(taskIdOf(parseAnyTaskSpec(explicit))).toBe(taskIdOf(parseAnyTaskSpec(base)));
    expect(canonicalSpec(parseAnyTaskSpec(base))).toContain('"v":2');
  });

  it.each([
    [[{ op: 'dense', units: 8, activation: 'relu' }], /gap or flatten/],
    [
      [{ op: 'conv', channels: 4, kernel: 3, stride: 2, activation: 'relu', residual: true }, { op: 'gap' }],
      /residual/,
    ],
    [[{ op: 'gap' }, { op: 'maxpool' }], /image input/],
    [[{ op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'relu' }], /end flat/],
    [[{ op: 'conv', channels: 4, kernel: 4, stride: 1, activation: 'relu' }, { op: 'gap' }], /kernel/],
  ])('rejects a model that does not fit: %j', (layers, message) => {
    const bad = { ...base, model: { ...base.model, layers } };
    expect(() => parseAnyTaskSpec(bad)).toThrow(message);
  });
});
