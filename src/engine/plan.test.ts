import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { parseTaskSpec } from '../protocol/spec.ts';
import { dequantizeParams, initialParams, modelPlan, trainingPlan } from './plan.ts';

const blobs = await loadDataset('blobs');
const spec = parseTaskSpec({
  v: 1,
  dataset: { name: 'blobs', sha256: blobs.sha256 },
  split: { seed: 5, validation: 100 },
  model: {
    inputs: 64,
    classes: 4,
    hidden: [
      { units: 32, activation: 'relu' },
      { units: 32, activation: 'gelu', residual: true },
    ],
  },
  training: {
    optimizer: 'sgd',
    batch: 48,
    steps: 40,
    seed: 9,
    learningRateQ16: 4915,
    momentumQ16: 58982,
    weightDecayQ24: 0,
  },
  checkpointEvery: 10,
});

describe('training plan', () => {
  it('lays parameters out layer by layer, W [K][N] then b [N]', () => {
    const { layers, paramCount } = modelPlan(spec);
    expect(layers.map((l) => [l.K, l.N, l.wOffset, l.bOffset, l.activation, l.residual])).toEqual([
      [64, 32, 0, 2048, 'relu', false],
      [32, 32, 2080, 3104, 'gelu', true],
      [32, 4, 3136, 3264, null, false],
    ]);
    expect(paramCount).toBe(3268);
  });

  it('initialises W uniform on [−√(6/K), √(6/K)) and b at 0', () => {
    const params = initialParams(spec);
    const layers = dequantizeParams(spec, params);
    for (const l of layers) {
      const a = Math.sqrt(6 / l.K);
      const w = [...l.W];
      expect(Math.max(...w)).toBeLessThan(a);
      expect(Math.min(...w)).toBeGreaterThanOrEqual(-a);
      expect(Math.max(...w)).toBeGreaterThan(0.9 * a);
      expect(Math.abs(w.reduce((s, v) => s + v, 0) / w.length)).toBeLessThan(0.1 * a);
      expect([...l.b].every((v) => v === 0)).toBe(true);
    }
    expect(initialParams(spec)).toEqual(params);
  });

  it('splits into disjoint validation and training sets and visits every training example once per epoch', () => {
    const plan = trainingPlan(spec, blobs);
    expect(plan.validation.length).toBe(100);
    expect(plan.train.length).toBe(412);
    expect(new Set([...plan.validation, ...plan.train]).size).toBe(512);
    // 40 steps × 48 = 1920 items = 4 full epochs of 412 and then some; batches straddle epochs.
    const all = plan.batchRange(0, 40);
    expect(all.length).toBe(1920);
    for (let e = 0; e < 4; e++) {
      const epoch = all.subarray(e * 412, (e + 1) * 412);
      expect([...epoch].sort((a, b) => a - b)).toEqual([...plan.train].sort((a, b) => a - b));
    }
    expect(all.subarray(0, 412)).not.toEqual(all.subarray(412, 824));
    expect(plan.batchIndices(17)).toEqual(all.subarray(17 * 48, 18 * 48));
  });

  it('refuses a dataset that does not fit the model', () => {
    const wrong = parseTaskSpec({ ...spec, model: { ...spec.model, inputs: 65 } });
    expect(() => trainingPlan(wrong, blobs)).toThrow(/64 features, model has 65 inputs/);
  });
});
