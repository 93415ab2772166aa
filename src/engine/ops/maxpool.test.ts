import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { imageCases, testI32 } from './conv-test-cases.ts';
import { type ImageLayout, type ImageShape, imageIndex } from './image.ts';
import { maxpool, pooledShape } from './maxpool.ts';
import { maxpoolBackward } from './maxpool-backward.ts';

const NONE = 0xffffffff;
const poolable = imageCases(9, 3).filter((s) => s.height >= 2 && s.width >= 2);
const activation = fc.constantFrom(null, ...ACTIVATIONS);

/** The window inputs of output (b, c, oy, ox), in row-major order. */
function window(
  x: Int32Array,
  layout: ImageLayout,
  s: ImageShape,
  b: number,
  c: number,
  oy: number,
  ox: number,
) {
  return [0, 1, 2, 3].map((w) => x[imageIndex(layout, s, b, c, 2 * oy + (w >> 1), 2 * ox + (w & 1))]);
}

describe('maxpool against the definition', () => {
  it('y = max of each 2×2 window, arg = the first maximum (row-major), max |y| folded into the slot', () => {
    fc.assert(
      fc.property(poolable, fc.integer({ min: 0, max: 32 }), fc.integer(), ({ layout, ...s }, bits, seed) => {
        const x = testI32(s.batch * s.channels * s.height * s.width, seed, bits); // few bits: many ties
        const out = pooledShape(s);
        const n = out.batch * out.channels * out.height * out.width;
        const y = new Int32Array(n).fill(7);
        const arg = new Uint32Array(n).fill(9);
        const maxes = Uint32Array.from([5, 0]);
        maxpool({ ...s, layout, outSlot: 1 }, { x, maxes, y, arg });
        let biggest = 0;
        for (let b = 0; b < s.batch; b++)
          for (let c = 0; c < s.channels; c++)
            for (let oy = 0; oy < out.height; oy++)
              for (let ox = 0; ox < out.width; ox++) {
                const win = window(x, layout, s, b, c, oy, ox);
                const best = Math.max(...win);
                const o = imageIndex(layout, out, b, c, oy, ox);
                expect(y[o]).toBe(best);
                expect(arg[o]).toBe(win.indexOf(best));
                biggest = Math.max(biggest, Math.abs(best));
              }
        expect(maxes).toEqual(Uint32Array.from([5, biggest]));
      }),
      { numRuns: 80 },
    );
  });

  it('backward routes each output gradient to its argmax (scatter reference), then act′ of the pooled layer', () => {
    fc.assert(
      fc.property(poolable, activation, fc.integer(), ({ layout, ...s }, act, seed) => {
        const count = s.batch * s.channels * s.height * s.width;
        const x = testI32(count, seed, 3);
        const out = pooledShape(s);
        const n = out.batch * out.channels * out.height * out.width;
        const y = new Int32Array(n);
        const arg = new Uint32Array(n);
        maxpool({ ...s, layout, outSlot: NONE }, { x, maxes: new Uint32Array(1), y, arg });
        const dy = testI32(n, seed + 1, 30);
        const z = testI32(count, seed + 2, 20);
        const gh = new Int32Array(count).fill(3);
        const gz = new Int32Array(count).fill(3);
        const maxes = new Uint32Array(1);
        maxpoolBackward({ ...s, layout, act, gzSlot: 0 }, { dy, arg, z, maxes, gh, gz });
        const want = new Int32Array(count);
        for (let b = 0; b < s.batch; b++)
          for (let c = 0; c < s.channels; c++)
            for (let oy = 0; oy < out.height; oy++)
              for (let ox = 0; ox < out.width; ox++) {
                const o = imageIndex(layout, out, b, c, oy, ox);
                const w = arg[o];
                want[imageIndex(layout, s, b, c, 2 * oy + (w >> 1), 2 * ox + (w & 1))] += dy[o];
              }
        expect(gh).toEqual(want);
        const wantGz = want.slice();
        if (act) activationBackward(act, z, want, wantGz, count);
        expect(gz).toEqual(wantGz);
        expect(maxes[0]).toBe(Math.max(0, ...Array.from(wantGz, Math.abs)));
      }),
      { numRuns: 80 },
    );
  });

  it('rejects images smaller than 2×2', () => {
    const p = { batch: 1, channels: 1, height: 1, width: 4, layout: 'hwc' as const, outSlot: NONE };
    const b = {
      x: new Int32Array(4),
      maxes: new Uint32Array(1),
      y: new Int32Array(2),
      arg: new Uint32Array(2),
    };
    expect(() => maxpool(p, b)).toThrow(/2×2/);
  });
});
