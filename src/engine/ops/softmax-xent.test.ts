import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ONE_Q16 } from './fixed.ts';
import { softmaxXent } from './softmax-xent.ts';

function floatXent(z: number[], y: number) {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const S = e.reduce((a, b) => a + b, 0);
  return { loss: Math.log(S) - (z[y] - m), p: e.map((v) => v / S) };
}

/** Logits in ±15, so no gap reaches the −32 clamp (which changes the loss on purpose). */
const row = (C: number) =>
  fc.array(fc.integer({ min: -15 * ONE_Q16, max: 15 * ONE_Q16 }), { minLength: C, maxLength: C });

describe('integer softmax cross-entropy against float64', () => {
  it('loss within 2^-12, probabilities within 2^-13, gradient of the mean within its rounding', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }).chain((C) => fc.array(row(C), { minLength: 1, maxLength: 8 })),
        fc.nat(),
        (rows, s) => {
          const C = rows[0].length;
          const B = rows.length;
          const z = Int32Array.from(rows.flat());
          const labels = rows.map((_, b) => (b * 7 + s) % C);
          const gz = new Int32Array(B * C);
          const { lossQ16, correct } = softmaxXent(z, labels, B, C, gz, B);
          let loss = 0;
          let expectCorrect = 0;
          rows.forEach((r, b) => {
            const f = floatXent(
              r.map((v) => v / ONE_Q16),
              labels[b],
            );
            loss += f.loss;
            if (r.indexOf(Math.max(...r)) === labels[b]) expectCorrect++;
            for (let j = 0; j < C; j++) {
              const grad = (f.p[j] - (j === labels[b] ? 1 : 0)) / B;
              // p is Q16 (error < 2^-13 from exp2 and the division), then divided by B and rounded in Q24.
              expect(Math.abs(gz[b * C + j] / 2 ** 24 - grad)).toBeLessThan(2 ** -13 / B + 2 ** -24);
            }
          });
          expect(correct).toBe(expectCorrect);
          expect(Math.abs(lossQ16 / ONE_Q16 - loss)).toBeLessThan(B * 2 ** -12);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('clamps far-below logits and ties argmax to the lowest index', () => {
    const z = Int32Array.from([5 * ONE_Q16, 5 * ONE_Q16, -0x80000000]);
    const { correct, lossQ16 } = softmaxXent(z, [0], 1, 3, null, 1);
    expect(correct).toBe(1);
    expect(Math.abs(lossQ16 / ONE_Q16 - Math.log(2))).toBeLessThan(2 ** -12);
    expect(softmaxXent(z, [1], 1, 3, null, 1).correct).toBe(0);
  });
});
