/**
 * The conv op kernels (src/engine/ops/{im2col,col2im,maxpool,gap,transpose}.wgsl) against their CPU
 * twins, bit for bit, on random shapes (kernel 1/3/5, stride 1/2, odd and tiny sizes, both layouts)
 * on Dawn (SwiftShader in CI).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { col2im } from '../ops/col2im.ts';
import { convCases } from '../ops/conv-test-cases.ts';
import { im2col } from '../ops/im2col.ts';
import { type ConvGeometry, type ImageLayout, layoutCode, patchShape } from '../ops/image.ts';
import { maxAbs, quantShift } from '../ops/quantize.ts';
import { readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { dispatchOnce, i32Buffer, readI32 } from './dispatch.ts';
import { wgsl } from './kernels.ts';
import { packLines } from './matmul.ts';
import { dawnContext, firstMismatch, randomI32 } from './test-harness.ts';

const NONE = 0xffffffff;
const ctx = dawnContext();

const u32Buffer = (values: ArrayLike<number>) =>
  storageBuffer(ctx().device, values.length * 4, Uint32Array.from(values));
const readU32 = async (buffer: GPUBuffer, length: number) =>
  new Uint32Array(await readBack(ctx().device, buffer, length * 4));
const groups = (threads: number, perGroup = 256): [number] => [Math.max(1, Math.ceil(threads / perGroup))];

describe('im2col.wgsl vs im2col.ts (both operand layouts, fused RNE quantisation)', () => {
  async function im2colOnGpu(
    x: Int32Array,
    layout: ImageLayout,
    g: ConvGeometry,
    slot: number,
    fixed: number,
  ) {
    const { outH, outW, rows, cols } = patchShape(g);
    const rowWords = rows * Math.ceil(cols / 4);
    const colWords = cols * Math.ceil(rows / 4);
    const pipeline = await ctx().pipeline(wgsl.fixed + wgsl.im2col, 'main', {
      CHANNELS_LAST: layoutCode(layout),
    });
    const params = [g.batch, g.channels, g.height, g.width, g.kernel, g.stride, outH, outW, slot, fixed];
    const byRow = storageBuffer(ctx().device, rowWords * 4);
    const byCol = storageBuffer(ctx().device, colWords * 4);
    const maxes = u32Buffer([7, maxAbs(x)]);
    await dispatchOnce(
      ctx(),
      pipeline,
      [uniformBuffer(ctx().device, params), i32Buffer(ctx(), x), maxes, byRow, byCol],
      groups(rowWords + colWords),
    );
    return { byRow: await readU32(byRow, rowWords), byCol: await readU32(byCol, colWords) };
  }

  it('random shapes, shift from the max-abs slot or fixed', async () => {
    await fc.assert(
      fc.asyncProperty(
        convCases(11, 5),
        fc.integer({ min: 0, max: 32 }),
        fc.boolean(),
        fc.integer(),
        async ({ layout, ...g }, bits, fromSlot, seed) => {
          const n = g.batch * g.channels * g.height * g.width;
          const x = randomI32(n, seed, bits, [-0x80000000, 0x7fffffff]);
          const shift = fromSlot ? quantShift(maxAbs(x)) : 9;
          const { rows, cols } = patchShape(g);
          const expected = new Int8Array(rows * cols);
          im2col(x, layout, g, shift, expected);
          const got = await im2colOnGpu(x, layout, g, fromSlot ? 1 : NONE, 9);
          expect(firstMismatch(got.byRow, packLines(expected, rows, cols, cols, 1))).toBeNull();
          expect(firstMismatch(got.byCol, packLines(expected, cols, rows, 1, cols))).toBeNull();
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('col2im.wgsl vs col2im.ts', () => {
  it('random shapes and values (wrapping sums)', async () => {
    await fc.assert(
      fc.asyncProperty(
        convCases(11, 5),
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        async ({ layout, ...g }, bits, seed) => {
          const { outH, outW, rows, cols } = patchShape(g);
          const dP = randomI32(rows * cols, seed, bits, [-0x80000000, 0x7fffffff]);
          const n = g.batch * g.channels * g.height * g.width;
          const expected = new Int32Array(n);
          col2im(dP, layout, g, expected);
          const pipeline = await ctx().pipeline(wgsl.col2im, 'main', { CHANNELS_LAST: layoutCode(layout) });
          const dX = storageBuffer(ctx().device, n * 4);
          const params = [g.batch, g.channels, g.height, g.width, g.kernel, g.stride, outH, outW];
          await dispatchOnce(
            ctx(),
            pipeline,
            [uniformBuffer(ctx().device, params), i32Buffer(ctx(), dP), dX],
            groups(n),
          );
          expect(firstMismatch(await readI32(ctx(), dX, n), expected)).toBeNull();
        },
      ),
      { numRuns: 12 },
    );
  });
});
