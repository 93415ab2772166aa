import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sgdStep } from './sgd.ts';

const big = (v: number) => BigInt(v);
const mulShrBig = (a: bigint, b: bigint, k: bigint) => BigInt.asIntN(32, (a * b + (1n << (k - 1n))) >> k);

describe('SGD with momentum and weight decay', () => {
  it('matches the contract formula in BigInt', () => {
    const q24 = fc.integer({ min: -(2 ** 28), max: 2 ** 28 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(q24, q24, q24), { minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 1 << 17 }),
        fc.integer({ min: 0, max: 1 << 16 }),
        fc.integer({ min: 0, max: 1 << 20 }),
        (rows, lr, mom, wd) => {
          const w = Int32Array.from(rows, (r) => r[0]);
          const v = Int32Array.from(rows, (r) => r[1]);
          const g = Int32Array.from(rows, (r) => r[2]);
          sgdStep(w, v, g, rows.length, lr, mom, wd);
          rows.forEach(([w0, v0, g0], i) => {
            const gp = BigInt.asIntN(32, big(g0) + mulShrBig(big(w0), big(wd), 24n));
            const v1 = BigInt.asIntN(32, mulShrBig(big(v0), big(mom), 16n) + gp);
            const w1 = BigInt.asIntN(32, big(w0) - mulShrBig(v1, big(lr), 16n));
            expect([w[i], v[i]]).toEqual([Number(w1), Number(v1)]);
          });
        },
      ),
    );
  });
});
