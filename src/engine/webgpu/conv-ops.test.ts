/**
 * The conv op kernels (src/engine/ops/{im2col,col2im,maxpool,gap,transpose}.wgsl) against their CPU
 * twins, bit for bit, on random shapes (kernel 1/3/5, stride 1/2, odd and tiny sizes, both layouts)
 * on Dawn (SwiftShader in CI).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS } from '../../protocol/spec.ts';
import { col2imSum } from '../ops/col2im.ts';
import { convCases, imageCases } from '../ops/conv-test-cases.ts';
import { divRoundHalfEven, gap } from '../ops/gap.ts';
import { gapBackward } from '../ops/gap-backward.ts';
import { im2colPatches } from '../ops/im2col.ts';
import { type ConvGeometry, type ImageLayout, layoutCode, patchShape } from '../ops/image.ts';
import { maxpool, pooledShape } from '../ops/maxpool.ts';
import { maxpoolBackward } from '../ops/maxpool-backward.ts';
import { maxAbs, quantShift } from '../ops/quantize.ts';
import { transpose } from '../ops/transpose.ts';
import { readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { dispatchOnce, i32Buffer, readI32 } from './dispatch.ts';
import { ACTIVATION_CODE, wgsl } from './kernels.ts';
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
          im2colPatches(x, layout, g, shift, expected);
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
          col2imSum(dP, layout, g, expected);
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

/**
 * One dispatch of `code` with the uniform `params` at binding 0 and `buffers` (typed arrays, inputs
 * and outputs alike) at 1, 2, …; returns every buffer read back as the same type.
 */
async function runKernel<T extends Record<string, Int32Array | Uint32Array>>(
  code: string,
  constants: Record<string, number>,
  params: number[],
  buffers: T,
  threads: number,
): Promise<T> {
  const pipeline = await ctx().pipeline(code, 'main', constants);
  const gpu = Object.values(buffers).map((a) => storageBuffer(ctx().device, a.byteLength, a));
  await dispatchOnce(ctx(), pipeline, [uniformBuffer(ctx().device, params), ...gpu], groups(threads));
  const out: Record<string, Int32Array | Uint32Array> = {};
  const entries = Object.entries(buffers);
  for (let i = 0; i < entries.length; i++) {
    const [name, a] = entries[i];
    const bytes = await readBack(ctx().device, gpu[i], a.byteLength);
    out[name] = a instanceof Int32Array ? new Int32Array(bytes) : new Uint32Array(bytes);
    gpu[i].destroy();
  }
  return out as T;
}

const poolable = imageCases(11, 5).filter((s) => s.height >= 2 && s.width >= 2);
const actCode = (act: (typeof ACTIVATIONS)[number] | null) => (act ? ACTIVATION_CODE[act] : 0);

describe('maxpool.wgsl and maxpool-backward.wgsl vs their twins', () => {
  it('forward: values, argmax (ties: first in row-major order), max slot', async () => {
    await fc.assert(
      fc.asyncProperty(
        poolable,
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        async ({ layout, ...s }, bits, seed) => {
          const x = randomI32(s.batch * s.channels * s.height * s.width, seed, bits, [-0x80000000]);
          const out = pooledShape(s);
          const n = out.batch * out.channels * out.height * out.width;
          const cpu = { x, maxes: Uint32Array.from([3, 0]), y: new Int32Array(n), arg: new Uint32Array(n) };
          maxpool({ ...s, layout, outSlot: 1 }, cpu);
          const gpu = await runKernel(
            wgsl.fixed + wgsl.maxpool,
            { CHANNELS_LAST: layoutCode(layout) },
            [s.batch, s.channels, s.height, s.width, 1],
            { x, maxes: Uint32Array.from([3, 0]), y: new Int32Array(n), arg: new Uint32Array(n) },
            n,
          );
          expect(firstMismatch(gpu.y, cpu.y)).toBeNull();
          expect(firstMismatch(gpu.arg, cpu.arg)).toBeNull();
          expect(Array.from(gpu.maxes)).toEqual(Array.from(cpu.maxes));
        },
      ),
      { numRuns: 12 },
    );
  });

  it('backward: routed gradient, fused act′, max slot', async () => {
    await fc.assert(
      fc.asyncProperty(
        poolable,
        fc.constantFrom(null, ...ACTIVATIONS),
        fc.integer(),
        async ({ layout, ...s }, act, seed) => {
          const count = s.batch * s.channels * s.height * s.width;
          const out = pooledShape(s);
          const n = out.batch * out.channels * out.height * out.width;
          const dy = randomI32(n, seed, 28, [-0x80000000, 0x7fffffff]);
          const arg = Uint32Array.from(randomI32(n, seed + 1, 32), (v) => (v >>> 0) % 4);
          const z = randomI32(count, seed + 2, 20);
          const fresh = () => ({
            dy,
            arg,
            z,
            maxes: new Uint32Array(2),
            gh: new Int32Array(count),
            gz: new Int32Array(count),
          });
          const cpu = fresh();
          maxpoolBackward({ ...s, layout, act, gzSlot: 1 }, cpu);
          const gpu = await runKernel(
            wgsl.fixed + wgsl.activation + wgsl.maxpoolBackward,
            { CHANNELS_LAST: layoutCode(layout), ACT: actCode(act) },
            [s.batch, s.channels, s.height, s.width, 1],
            fresh(),
            count,
          );
          expect(firstMismatch(gpu.gh, cpu.gh)).toBeNull();
          expect(firstMismatch(gpu.gz, cpu.gz)).toBeNull();
          expect(Array.from(gpu.maxes)).toEqual(Array.from(cpu.maxes));
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('gap.wgsl and gap-backward.wgsl vs their twins', () => {
  it('pool-div.wgsl: 64-bit sums divided by n ≤ 2^16, rounded half to even', async () => {
    const cases: [bigint, number][] = [
      [0n, 1],
      [5n, 2],
      [7n, 2],
      [-5n, 2],
      [-7n, 2],
      [65536n * -2147483648n, 65536],
      [65536n * 2147483647n, 65536],
      [-1n, 65536],
      [32768n, 65536],
      [-32768n, 65536],
      [98304n, 65536],
    ];
    let r = 12345;
    for (let i = 0; i < 500; i++) {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      const n = (r % 65536) + 1;
      const s = BigInt(Math.floor((r / 2 ** 32 - 0.5) * 2 ** 31)) * BigInt(n) + BigInt(i - 250);
      cases.push([s, n]);
    }
    const inputs = new Uint32Array(
      cases.flatMap(([s, n]) => [Number(BigInt.asUintN(32, s)), Number(BigInt.asUintN(32, s >> 32n)), n]),
    );
    const code = `${wgsl.poolDiv}
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= arrayLength(&y)) { return; }
  y[i] = div_round_even_i64(vec2<u32>(x[3u * i], x[3u * i + 1u]), x[3u * i + 2u]);
}`;
    const pipeline = await ctx().pipeline(code);
    const y = storageBuffer(ctx().device, cases.length * 4);
    await dispatchOnce(ctx(), pipeline, [u32Buffer(inputs), y], groups(cases.length, 64));
    const got = await readI32(ctx(), y, cases.length);
    expect(
      firstMismatch(
        got,
        cases.map(([s, n]) => divRoundHalfEven(Number(s), n)),
        cases,
      ),
    ).toBeNull();
  });

  it('forward: exact mean, both layouts, max slot', async () => {
    await fc.assert(
      fc.asyncProperty(
        imageCases(11, 5),
        fc.integer({ min: 0, max: 32 }),
        fc.integer(),
        async ({ layout, ...s }, bits, seed) => {
          const x = randomI32(
            s.batch * s.channels * s.height * s.width,
            seed,
            bits,
            [-0x80000000, 0x7fffffff],
          );
          const n = s.batch * s.channels;
          const cpu = { x, maxes: new Uint32Array(2), y: new Int32Array(n) };
          gap({ ...s, layout, outSlot: 1 }, cpu);
          const gpu = await runKernel(
            wgsl.fixed + wgsl.poolDiv + wgsl.gap,
            { CHANNELS_LAST: layoutCode(layout) },
            [s.batch, s.channels, s.height, s.width, 1],
            { x, maxes: new Uint32Array(2), y: new Int32Array(n) },
            n * 4, // workgroups of 64
          );
          expect(firstMismatch(gpu.y, cpu.y)).toBeNull();
          expect(Array.from(gpu.maxes)).toEqual(Array.from(cpu.maxes));
        },
      ),
      { numRuns: 12 },
    );
  });

  it('forward: 256×256 pixels of INT32_MIN and INT32_MAX (sums near ±2^47)', async () => {
    for (const v of [-0x80000000, 0x7fffffff]) {
      const gpu = await runKernel(
        wgsl.fixed + wgsl.poolDiv + wgsl.gap,
        { CHANNELS_LAST: 1 },
        [1, 2, 256, 256, NONE],
        { x: new Int32Array(2 * 65536).fill(v), maxes: new Uint32Array(1), y: new Int32Array(2) },
        256,
      );
      expect(Array.from(gpu.y)).toEqual([v, v]);
    }
  });

  it('backward: shared gradient, fused act′, max slot', async () => {
    await fc.assert(
      fc.asyncProperty(
        imageCases(11, 5),
        fc.constantFrom(null, ...ACTIVATIONS),
        fc.integer(),
        async ({ layout, ...s }, act, seed) => {
          const count = s.batch * s.channels * s.height * s.width;
          const dy = randomI32(s.batch * s.channels, seed, 32, [-0x80000000, 0x7fffffff]);
          const z = randomI32(count, seed + 1, 20);
          const fresh = () => ({
            dy,
            z,
            maxes: new Uint32Array(2),
            gh: new Int32Array(count),
            gz: new Int32Array(count),
          });
          const cpu = fresh();
          gapBackward({ ...s, layout, act, gzSlot: 1 }, cpu);
          const gpu = await runKernel(
            wgsl.fixed + wgsl.activation + wgsl.poolDiv + wgsl.gapBackward,
            { CHANNELS_LAST: layoutCode(layout), ACT: actCode(act) },
            [s.batch, s.channels, s.height, s.width, 1],
            fresh(),
            count,
          );
          expect(firstMismatch(gpu.gh, cpu.gh)).toBeNull();
          expect(firstMismatch(gpu.gz, cpu.gz)).toBeNull();
          expect(Array.from(gpu.maxes)).toEqual(Array.from(cpu.maxes));
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('transpose.wgsl vs transpose.ts', () => {
  for (const tiled of [true, false]) {
    it(`random batched shapes (${tiled ? 'tiled through workgroup memory' : 'barrier-free'})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 40 }),
          fc.integer(),
          async (batch, rows, cols, seed) => {
            const x = randomI32(batch * rows * cols, seed);
            const expected = new Int32Array(x.length);
            transpose({ batch, rows, cols, tiled }, { x, y: expected });
            const pipeline = await ctx().pipeline(wgsl.transpose, 'main', { TILED: tiled ? 1 : 0 });
            const y = storageBuffer(ctx().device, x.length * 4);
            await dispatchOnce(
              ctx(),
              pipeline,
              [uniformBuffer(ctx().device, [batch, rows, cols]), i32Buffer(ctx(), x), y],
              [Math.ceil(cols / 16), Math.ceil(rows / 16) * batch],
            );
            expect(firstMismatch(await readI32(ctx(), y, x.length), expected)).toBeNull();
          },
        ),
        { numRuns: 10 },
      );
    });
  }
});
