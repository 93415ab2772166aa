import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { col2imSum } from './col2im.ts';
import { convCases, testI32 } from './conv-test-cases.ts';
import { im2colPatches } from './im2col.ts';
import { patchShape } from './image.ts';

describe('col2im against the definition', () => {
  it('dX[b][c][y][x] = Σ dP[(b, oy, ox)][(c, ky, kx)] over oy·s + ky − p = y, ox·s + kx − p = x (wrapping)', () => {
    fc.assert(
      fc.property(
        convCases(),
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        ({ layout, ...g }, bits, seed) => {
          const { outH, outW, rows, cols } = patchShape(g);
          const dP = testI32(rows * cols, seed, bits);
          const dX = new Int32Array(g.batch * g.channels * g.height * g.width).fill(99);
          col2imSum(dP, layout, g, dX);
          const { kernel: k, stride: s } = g;
          const pad = Math.floor(k / 2);
          for (let b = 0; b < g.batch; b++)
            for (let c = 0; c < g.channels; c++)
              for (let y = 0; y < g.height; y++)
                for (let x = 0; x < g.width; x++) {
                  let sum = 0;
                  for (let oy = 0; oy < outH; oy++)
                    for (let ox = 0; ox < outW; ox++)
                      for (let ky = 0; ky < k; ky++)
                        for (let kx = 0; kx < k; kx++)
                          if (oy * s + ky - pad === y && ox * s + kx - pad === x)
                            sum =
                              (sum + dP[((b * outH + oy) * outW + ox) * cols + (c * k + ky) * k + kx]) | 0;
                  const i =
                    layout === 'chw'
                      ? ((b * g.channels + c) * g.height + y) * g.width + x
                      : ((b * g.height + y) * g.width + x) * g.channels + c;
                  expect(dX[i]).toBe(sum);
                }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('is the adjoint of im2col: ⟨col2imSum(D), X⟩ = ⟨D, im2colPatches(X)⟩', () => {
    fc.assert(
      fc.property(convCases(), fc.integer(), ({ layout, ...g }, seed) => {
        const n = g.batch * g.channels * g.height * g.width;
        const x = testI32(n, seed, 7).map((v) => Math.max(v, -127));
        const { rows, cols } = patchShape(g);
        const d = testI32(rows * cols, seed + 1, 12);
        const patches = new Int8Array(rows * cols);
        im2colPatches(x, layout, g, 0, patches);
        const dX = new Int32Array(n);
        col2imSum(d, layout, g, dX);
        let left = 0;
        let right = 0;
        for (let i = 0; i < n; i++) left += dX[i] * x[i];
        for (let i = 0; i < rows * cols; i++) right += d[i] * patches[i];
        expect(left).toBe(right);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects short buffers', () => {
    const g = { batch: 1, channels: 2, height: 3, width: 3, kernel: 3, stride: 1 };
    expect(() => col2imSum(new Int32Array(10), 'hwc', g, new Int32Array(18))).toThrow(/dP/);
    expect(() => col2imSum(new Int32Array(162), 'hwc', g, new Int32Array(17))).toThrow(/dX/);
  });
});
