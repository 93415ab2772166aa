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
});
