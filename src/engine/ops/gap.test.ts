import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { imageCases, testI32 } from './conv-test-cases.ts';
import { divRoundHalfEven, gap } from './gap.ts';
import { gapBackward } from './gap-backward.ts';
import { imageIndex } from './image.ts';

const NONE = 0xffffffff;

/** round_half_even(s / n) in bigint: the obviously-correct reference. */
function rneBig(s: bigint, n: bigint): number {
  let q = s / n; // truncates toward zero
  let r = s - q * n;
  if (r < 0n) {
    q -= 1n;
    r += n;
  }
  const up = 2n * r > n || (2n * r === n && q % 2n !== 0n);
  return Number(up ? q + 1n : q);
}

describe('divRoundHalfEven', () => {
  it('equals the bigint definition for |s| < 2^48 and n ≤ 2^16', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 48n), max: 2n ** 48n }),
        fc.integer({ min: 1, max: 1 << 16 }),
        (s, n) => {
          expect(divRoundHalfEven(Number(s), n)).toBe(rneBig(s, BigInt(n)));
        },
      ),
      { numRuns: 2000 },
    );
    // ties go to the even neighbour, both signs
    expect([5, 7, -5, -7, 6, -6].map((s) => divRoundHalfEven(s, 2))).toEqual([2, 4, -2, -4, 3, -3]);
  });
});

describe('gap against the definition', () => {
  it('y[b][c] = round_half_even(Σ pixels / (H·W)) with an exact sum; max |y| into the slot', () => {
    fc.assert(
      fc.property(
        imageCases(9, 4),
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        ({ layout, ...s }, bits, seed) => {
          const x = testI32(s.batch * s.channels * s.height * s.width, seed, bits);
          const y = new Int32Array(s.batch * s.channels).fill(5);
          const maxes = new Uint32Array(3);
          gap({ ...s, layout, outSlot: 2 }, { x, maxes, y });
          const n = BigInt(s.height * s.width);
          let biggest = 0;
          for (let b = 0; b < s.batch; b++)
            for (let c = 0; c < s.channels; c++) {
              let sum = 0n;
              for (let r = 0; r < s.height; r++)
                for (let q = 0; q < s.width; q++) sum += BigInt(x[imageIndex(layout, s, b, c, r, q)]);
              const want = rneBig(sum, n);
              expect(y[b * s.channels + c]).toBe(want);
              biggest = Math.max(biggest, Math.abs(want));
            }
          expect(Array.from(maxes)).toEqual([0, 0, biggest]);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('extreme sums do not wrap: 256×256 of INT32_MIN and of INT32_MAX', () => {
    for (const v of [-0x80000000, 0x7fffffff]) {
      const s = { batch: 1, channels: 1, height: 256, width: 256, layout: 'hwc' as const, outSlot: NONE };
      const y = new Int32Array(1);
      gap(s, { x: new Int32Array(65536).fill(v), maxes: new Uint32Array(1), y });
      expect(y[0]).toBe(v);
    }
  });

  it('backward: every pixel gets round_half_even(dy / (H·W)), then act′; max |gz| into the slot', () => {
    fc.assert(
      fc.property(
        imageCases(9, 4),
        fc.constantFrom(null, ...ACTIVATIONS),
        fc.integer(),
        ({ layout, ...s }, act, seed) => {
          const count = s.batch * s.channels * s.height * s.width;
          const dy = testI32(s.batch * s.channels, seed, 32);
          const z = testI32(count, seed + 1, 20);
          const gh = new Int32Array(count).fill(1);
          const gz = new Int32Array(count).fill(1);
          const maxes = new Uint32Array(1);
          gapBackward({ ...s, layout, act, gzSlot: 0 }, { dy, z, maxes, gh, gz });
          const want = new Int32Array(count);
          for (let b = 0; b < s.batch; b++)
            for (let c = 0; c < s.channels; c++)
              for (let r = 0; r < s.height; r++)
                for (let q = 0; q < s.width; q++)
                  want[imageIndex(layout, s, b, c, r, q)] = rneBig(
                    BigInt(dy[b * s.channels + c]),
                    BigInt(s.height * s.width),
                  );
          expect(gh).toEqual(want);
          const wantGz = want.slice();
          if (act) activationBackward(act, z, want, wantGz, count);
          expect(gz).toEqual(wantGz);
          expect(maxes[0]).toBe(Math.max(0, ...Array.from(wantGz, Math.abs)));
        },
      ),
      { numRuns: 80 },
    );
  });

  it('rejects more than 2^16 pixels per channel', () => {
    const s = { batch: 1, channels: 1, height: 257, width: 256, layout: 'chw' as const, outSlot: NONE };
    expect(() =>
      gap(s, { x: new Int32Array(257 * 256), maxes: new Uint32Array(1), y: new Int32Array(1) }),
    ).toThrow(/pixels/);
  });
});
