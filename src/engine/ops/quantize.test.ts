import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxAbs, quantizeRNE, quantizeStochastic, quantShift } from './quantize.ts';
import { rngKey } from './rng.ts';

const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

describe('quantisation', () => {
  it('shift is the least s with maxabs >> s ≤ 127', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (m) => {
        const s = quantShift(m);
        expect(Math.floor(m / 2 ** s)).toBeLessThanOrEqual(127);
        if (s > 0) expect(Math.floor(m / 2 ** (s - 1))).toBeGreaterThan(127);
      }),
    );
    expect(maxAbs(Int32Array.from([3, -0x80000000, 7]))).toBe(2 ** 31);
  });

  it('round-half-even matches float64 rounding of x / 2^s', () => {
    fc.assert(
      fc.property(
        fc.array(i32, { minLength: 1, maxLength: 64 }),
        fc.integer({ min: 0, max: 31 }),
        (xs, sh) => {
          const x = Int32Array.from(xs, (v) => v >> sh);
          const q = new Int8Array(x.length);
          const s = quantizeRNE(x, q);
          x.forEach((v, i) => {
            expect(q[i]).toBe(Math.max(-127, Math.min(127, roundHalfEven(v / 2 ** s))));
          });
        },
      ),
    );
  });

  it('stochastic rounding lands on a neighbour and is unbiased', () => {
    const n = 20000;
    const x = new Int32Array(n).fill(1000 * 64 + 13); // 1000.203 at s = 6 ... with maxabs from below
    x[0] = 127 * 512; // forces s = 9: every other element is 125.02 in units of 2^9
    const q = new Int8Array(n);
    const s = quantizeStochastic(x, q, rngKey(7, 3, 0x201));
    expect(s).toBe(9);
    let sum = 0;
    for (let i = 1; i < n; i++) {
      expect(q[i] === 125 || q[i] === 126).toBe(true);
      sum += q[i];
    }
    const mean = sum / (n - 1);
    expect(Math.abs(mean - x[1] / 512)).toBeLessThan(0.01);
    const again = new Int8Array(n);
    quantizeStochastic(x, again, rngKey(7, 3, 0x201));
    expect(again).toEqual(q);
  });

  it('stochastic rounding of values already on the grid is exact, and never overflows', () => {
    fc.assert(
      fc.property(fc.array(i32, { minLength: 1, maxLength: 64 }), fc.nat(), (xs, key) => {
        const x = Int32Array.from(xs);
        const q = new Int8Array(x.length);
        const s = quantizeStochastic(x, q, key);
        x.forEach((v, i) => {
          const lo = Math.floor(v / 2 ** s);
          expect(q[i] === Math.max(-127, lo) || q[i] === Math.min(127, lo + 1)).toBe(true);
          if (v % 2 ** s === 0) expect(q[i]).toBe(Math.max(-127, lo));
        });
      }),
    );
  });
});
