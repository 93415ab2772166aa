import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bitlen,
  divRound,
  exp2Q15,
  isqrt,
  log2Q16,
  mulShr,
  ONE_Q16,
  rescale,
  shrRound,
  wrapI32,
} from './fixed.ts';

const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const wrap = (v: bigint) => Number(BigInt.asIntN(32, v));
/** ⌊(a + 2^(k−1)) / 2^k⌋ in BigInt (>> on BigInt floors). */
const shrRoundBig = (a: bigint, k: number) => (k === 0 ? a : (a + (1n << BigInt(k - 1))) >> BigInt(k));

describe('fixed-point helpers match BigInt', () => {
  it('bitlen', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        (m) => bitlen(m) === m.toString(2).replace(/^0+/, '').length,
      ),
    );
  });

  it('shrRound', () => {
    fc.assert(
      fc.property(i32, fc.integer({ min: 0, max: 40 }), (a, k) => {
        expect(shrRound(a, k)).toBe(Number(shrRoundBig(BigInt(a), k)));
      }),
    );
  });

  it('rescale saturates up and rounds down', () => {
    fc.assert(
      fc.property(i32, fc.integer({ min: -40, max: 40 }), (a, k) => {
        const exact = k >= 0 ? BigInt(a) << BigInt(k) : shrRoundBig(BigInt(a), -k);
        const sat = exact > 0x7fffffffn ? 0x7fffffff : exact < -0x80000000n ? -0x80000000 : Number(exact);
        expect(rescale(a, k)).toBe(sat);
      }),
    );
  });

  it('mulShr on products below 2^53', () => {
    fc.assert(
      fc.property(
        i32,
        fc.integer({ min: -(2 ** 21), max: 2 ** 21 }),
        fc.integer({ min: 0, max: 40 }),
        (a, b, k) => {
          expect(mulShr(a, b, k)).toBe(wrap(shrRoundBig(BigInt(a) * BigInt(b), k)));
        },
      ),
    );
  });

  it('wrapI32', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 52n), max: 2n ** 52n }), (v) => {
        expect(wrapI32(Number(v))).toBe(wrap(v));
      }),
    );
  });

  it('divRound rounds half up', () => {
    fc.assert(
      fc.property(i32, fc.integer({ min: 1, max: 1 << 20 }), (a, d) => {
        const num = 2n * BigInt(a) + BigInt(d);
        const den = 2n * BigInt(d);
        const floor = num >= 0n ? num / den : -((-num + den - 1n) / den);
        expect(divRound(a, d)).toBe(Number(floor));
      }),
    );
  });

  it('isqrt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 52 - 1 }), (n) => {
        const r = isqrt(n);
        expect(BigInt(r) * BigInt(r) <= BigInt(n) && BigInt(r + 1) * BigInt(r + 1) > BigInt(n)).toBe(true);
      }),
    );
  });
});

describe('exp2 and log2 against float64', () => {
  it('exp2Q15(t) is within 1 unit (2^-15) of 2^t for t in [-48, 0]', () => {
    expect(exp2Q15(0)).toBe(1 << 15);
    let worst = 0;
    for (let t = -48 * ONE_Q16; t <= 0; t += 37) {
      const err = Math.abs(exp2Q15(t) - 2 ** (t / ONE_Q16) * 2 ** 15);
      worst = Math.max(worst, err);
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('log2Q16(s) is within 1 unit (2^-16) of log2(s) for s in [1, 2^31)', () => {
    let worst = 0;
    const check = (s: number) => {
      worst = Math.max(worst, Math.abs(log2Q16(s) - Math.log2(s) * ONE_Q16));
    };
    for (let s = 1; s < 1 << 16; s++) check(s);
    fc.assert(fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (s) => check(s) === undefined));
    expect(log2Q16(1)).toBe(0);
    expect(log2Q16(1 << 20)).toBe(20 * ONE_Q16);
    expect(worst).toBeLessThanOrEqual(1);
  });
});
