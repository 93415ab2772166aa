import { describe, expect, it } from 'vitest';
import { paretoFront, rankModel } from './models.ts';

describe('paretoFront', () => {
  it('keeps exactly the models no other beats on both accuracy and cost', () => {
    const models = [
      { accuracy: 0.9, cost: 100 },
      { accuracy: 0.8, cost: 50 },
      { accuracy: 0.85, cost: 200 }, // dominated by the first
      { accuracy: 0.95, cost: 400 },
      { accuracy: 0.8, cost: 60 }, // dominated by the second
    ];
    expect(paretoFront(models).sort()).toEqual([0, 1, 3]);
  });
});

describe('rankModel', () => {
  it('counts parameters and FLOPs from the spec when the entry lacks them', () => {
    const spec = {
      model: { inputs: 64, classes: 4, hidden: [{ units: 16, activation: 'relu', residual: false }] },
    };
    const m = rankModel({ taskId: '0x01', spec, valCorrect: 3, valCount: 4 });
    expect(m.params).toBe(64 * 16 + 16 + 16 * 4 + 4);
    expect(m.flops).toBe(2 * (64 * 16 + 16 * 4));
    expect(m.accuracy).toBe(0.75);
    expect(m.label).toBe('16relu');
  });

  it('ranks a conv (v2) model: exact parameters, conv FLOPs, a layer label and the -cnn track', () => {
    const spec = {
      v: 2,
      dataset: { name: 'mnist' },
      model: {
        input: { channels: 1, height: 8, width: 8 },
        classes: 10,
        layers: [
          { op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'relu', residual: false },
          { op: 'maxpool' },
          { op: 'conv', channels: 8, kernel: 3, stride: 2, activation: 'relu', residual: false },
          { op: 'gap' },
        ],
      },
    };
    const m = rankModel({ taskId: '0x02', spec, valCorrect: 1, valCount: 2 });
    // conv 1→4 (k 3): 9·4 + 4; conv 4→8: 36·8 + 8; classifier 8→10: 80 + 10.
    expect(m.params).toBe(40 + 296 + 90);
    // conv1: 8·8 positions × 9 × 4; pool → 4×4; conv2 (stride 2): 2·2 × 36 × 8; classifier 8 × 10.
    expect(m.flops).toBe(2 * (64 * 36 + 4 * 288 + 80));
    expect(m.label).toBe('c4k3–maxpool–c8k3s2–gap');
    expect(m.track).toBe('mnist-cnn');
  });
});
