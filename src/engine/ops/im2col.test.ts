import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convCases, testI32 } from './conv-test-cases.ts';
import { im2colPatches, roundHalfEvenI8 } from './im2col.ts';
import { type ConvGeometry, type ImageLayout, patchShape } from './image.ts';
import { matmulXW } from './matmul.ts';
import { maxAbs, quantizeRNE, quantShift } from './quantize.ts';

const at = (layout: ImageLayout, g: ConvGeometry, b: number, c: number, y: number, x: number) =>
  layout === 'chw'
    ? ((b * g.channels + c) * g.height + y) * g.width + x
    : ((b * g.height + y) * g.width + x) * g.channels + c;

/** Element (b, c, iy, ix) of q, or 0 outside the image. */
function padded(
  q: Int8Array,
  layout: ImageLayout,
  g: ConvGeometry,
  b: number,
  c: number,
  iy: number,
  ix: number,
) {
  return iy < 0 || ix < 0 || iy >= g.height || ix >= g.width ? 0 : q[at(layout, g, b, c, iy, ix)];
}

describe('im2col against the definition', () => {
  it('patch (b, oy, ox)(c, ky, kx) = RNE-quantised input at (oy·s + ky − pad, ox·s + kx − pad), 0 outside', () => {
    fc.assert(
      fc.property(
        convCases(),
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        ({ layout, ...g }, bits, seed) => {
          const n = g.batch * g.channels * g.height * g.width;
          const x = testI32(n, seed, bits);
          const q = new Int8Array(n);
          quantizeRNE(x, q);
          const shift = quantShift(maxAbs(x));
          const { outH, outW, rows, cols } = patchShape(g);
          const patches = new Int8Array(rows * cols).fill(99);
          im2colPatches(x, layout, g, shift, patches);
          const pad = Math.floor(g.kernel / 2);
          const k = g.kernel;
          for (let b = 0; b < g.batch; b++)
            for (let oy = 0; oy < outH; oy++)
              for (let ox = 0; ox < outW; ox++)
                for (let c = 0; c < g.channels; c++)
                  for (let ky = 0; ky < k; ky++)
                    for (let kx = 0; kx < k; kx++) {
                      const m = (b * outH + oy) * outW + ox;
                      const col = (c * k + ky) * k + kx;
                      const want = padded(
                        q,
                        layout,
                        g,
                        b,
                        c,
                        oy * g.stride + ky - pad,
                        ox * g.stride + kx - pad,
                      );
                      expect(patches[m * cols + col]).toBe(want);
                    }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('patches · W equals the direct convolution sum', () => {
    fc.assert(
      fc.property(convCases(), fc.integer({ min: 1, max: 3 }), fc.integer(), ({ layout, ...g }, N, seed) => {
        const n = g.batch * g.channels * g.height * g.width;
        const q = Int8Array.from({ length: n }, (_, i) => (Math.imul(seed + i, 0x2c1b3c6d) >> 24) % 128);
        const { outH, outW, rows, cols } = patchShape(g);
        const w = Int8Array.from(
          { length: cols * N },
          (_, i) => (Math.imul(seed ^ i, 0x297a2d39) >> 24) % 128,
        );
        const patches = new Int8Array(rows * cols);
        im2colPatches(Int32Array.from(q), layout, g, 0, patches);
        const acc = new Int32Array(rows * N);
        matmulXW(patches, w, rows, cols, N, acc);
        const pad = Math.floor(g.kernel / 2);
        const k = g.kernel;
        for (let b = 0; b < g.batch; b++)
          for (let oc = 0; oc < N; oc++)
            for (let oy = 0; oy < outH; oy++)
              for (let ox = 0; ox < outW; ox++) {
                let sum = 0;
                for (let c = 0; c < g.channels; c++)
                  for (let ky = 0; ky < k; ky++)
                    for (let kx = 0; kx < k; kx++)
                      sum +=
                        padded(q, layout, g, b, c, oy * g.stride + ky - pad, ox * g.stride + kx - pad) *
                        w[((c * k + ky) * k + kx) * N + oc];
                expect(acc[((b * outH + oy) * outW + ox) * N + oc]).toBe(sum);
              }
      }),
      { numRuns: 40 },
    );
  });

  it('rounds each element as quantize.ts does (ties to even, clamp to ±127)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -0x80000000, max: 0x7fffffff }), { minLength: 1, maxLength: 40 }),
        (vals) => {
          const x = Int32Array.from(vals);
          const q = new Int8Array(x.length);
          const s = quantizeRNE(x, q);
          expect(Array.from(x, (v) => roundHalfEvenI8(v, s))).toEqual(Array.from(q));
        },
      ),
    );
    expect([5, 6, 7, -5, -6, -7, 1000, -1000].map((v) => roundHalfEvenI8(v, 2))).toEqual([
      1, 2, 2, -1, -2, -2, 127, -127,
    ]);
  });

  it('rejects bad geometry, shift and sizes', () => {
    const g = { batch: 1, channels: 1, height: 4, width: 4, kernel: 3, stride: 1 };
    const p = new Int8Array(16 * 9);
    expect(() => im2colPatches(new Int32Array(16), 'chw', { ...g, kernel: 2 }, 0, p)).toThrow(/kernel/);
    expect(() => im2colPatches(new Int32Array(16), 'chw', { ...g, stride: 3 }, 0, p)).toThrow(/stride/);
    expect(() => im2colPatches(new Int32Array(16), 'chw', g, 32, p)).toThrow(/shift/);
    expect(() => im2colPatches(new Int32Array(15), 'chw', g, 0, p)).toThrow(/input/);
    expect(() => im2colPatches(new Int32Array(16), 'chw', g, 0, new Int8Array(10))).toThrow(/patches/);
  });
});
