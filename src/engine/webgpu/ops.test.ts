/**
 * Each training kernel against its CPU twin in src/engine/ops, bit for bit, on random inputs and edge
 * cases (INT32_MIN, zero tensors, shifts 0 and large).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS } from '../../protocol/spec.ts';
import { activate, activationBackward } from '../ops/activation.ts';
import { columnSums, matmulEWt, matmulXtE, matmulXW, rescaleAddBias, rescaleAll } from '../ops/matmul.ts';
import { quantizeRNE, quantizeStochastic } from '../ops/quantize.ts';
import { rngKey, TENSOR } from '../ops/rng.ts';
import { sgdStep } from '../ops/sgd.ts';
import { softmaxXent } from '../ops/softmax-xent.ts';
import { readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { dispatchOnce, i32Buffer, readI32 } from './dispatch.ts';
import { ACTIVATION_CODE, kernelCode } from './kernels.ts';
import { packLines, runMatmulPacked } from './matmul.ts';
import { dawnContext, evaluate, firstMismatch, randomI32 } from './test-harness.ts';

const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;
const NONE = 0xffffffff;

const ctx = dawnContext();

const u32Buffer = (values: ArrayLike<number>) =>
  storageBuffer(ctx().device, values.length * 4, Uint32Array.from(values));

/** maxabs.wgsl then quantize.wgsl on x[rows][cols], as the trainer records them. */
async function quantizeOnGpu(
  x: Int32Array,
  cols: number,
  stochastic: { seed: number; step: number; tensor: number } | null,
) {
  const n = x.length;
  const rows = n / cols;
  const maxes = u32Buffer([0, 0]);
  const input = i32Buffer(ctx(), x);
  const maxabs = await ctx().pipeline(kernelCode('maxabs'));
  await dispatchOnce(
    ctx(),
    maxabs,
    [uniformBuffer(ctx().device, [n, 1]), input, maxes],
    [Math.min(64, Math.ceil(n / 256))],
  );
  const quantize = await ctx().pipeline(kernelCode('quantize'), 'main', { STOCHASTIC: stochastic ? 1 : 0 });
  const rowWords = rows * Math.ceil(cols / 4);
  const colWords = cols * Math.ceil(rows / 4);
  const byRow = storageBuffer(ctx().device, rowWords * 4);
  const byCol = storageBuffer(ctx().device, colWords * 4);
  const state = u32Buffer([stochastic?.step ?? 0, 0, 0, 0]);
  const params = uniformBuffer(ctx().device, [rows, cols, 1, stochastic?.tensor ?? 0, stochastic?.seed ?? 0]);
  await dispatchOnce(
    ctx(),
    quantize,
    [params, input, maxes, state, byRow, byCol],
    [Math.ceil((rowWords + colWords) / 256)],
  );
  return {
    byRow: new Uint32Array(await readBack(ctx().device, byRow, rowWords * 4)),
    byCol: new Uint32Array(await readBack(ctx().device, byCol, colWords * 4)),
  };
}

describe('maxabs.wgsl + quantize.wgsl vs quantize.ts, both operand layouts', () => {
  const cases: [string, Int32Array, number][] = [
    ['random full range with INT32_MIN', randomI32(3003, 1, 32, [I32_MIN, I32_MAX]), 39],
    ['all zero', new Int32Array(100), 10],
    ['small values, shift 0', randomI32(999, 2, 8).map((v) => v >> 1), 27],
    ['exactly 127 and −127', Int32Array.from([127, -127, 0, 5]), 1],
    ['only INT32_MIN', new Int32Array(7).fill(I32_MIN), 7],
    ['Q24-sized gradients', randomI32(5000, 3, 26), 50],
    ['one element', Int32Array.from([-300]), 1],
    ['ties at shift 1 (odd values ±255)', randomI32(1000, 8, 9, [255, -255]), 8],
    [
      'exact halves at shift 4',
      Int32Array.from({ length: 200 }, (_, i) => (i - 100) * 16 + 8).map((v, i) => (i === 0 ? 2047 : v)),
      20,
    ],
  ];
  for (const [name, x, cols] of cases) {
    const rows = x.length / cols;
    const expectLayouts = async (q: Int8Array, stochastic: Parameters<typeof quantizeOnGpu>[2]) => {
      const got = await quantizeOnGpu(x, cols, stochastic);
      expect(firstMismatch(got.byRow, packLines(q, rows, cols, cols, 1))).toBeNull();
      expect(firstMismatch(got.byCol, packLines(q, cols, rows, 1, cols))).toBeNull();
    };
    it(`round half even: ${name}`, async () => {
      const expected = new Int8Array(x.length);
      quantizeRNE(x, expected);
      await expectLayouts(expected, null);
    });
    it(`stochastic: ${name}`, async () => {
      const key = { seed: 0xdeadbeef, step: 12345, tensor: TENSOR.srErr(2) };
      const expected = new Int8Array(x.length);
      quantizeStochastic(x, expected, rngKey(key.seed, key.step, key.tensor));
      await expectLayouts(expected, key);
    });
  }
});

describe('matmul.wgsl in the three training layouts vs matmul.ts', () => {
  for (const packed of [false, true]) {
    it(`x·W, xᵀ·e and e·Wᵀ on random shapes (${packed ? 'dot4I8Packed' : 'plain i32'})`, async () => {
      if (packed && !ctx().packedDot) return;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 37 }),
          fc.integer({ min: 1, max: 70 }),
          fc.integer({ min: 1, max: 35 }),
          fc.integer(),
          async (B, K, N, seed) => {
            const x = Int8Array.from(randomI32(B * K, seed, 8));
            const w = Int8Array.from(randomI32(K * N, seed + 1, 8));
            const e = Int8Array.from(randomI32(B * N, seed + 2, 8));
            const cases = [
              // [shape, A lines, B lines, CPU twin]
              [{ m: B, n: N, k: K }, packLines(x, B, K, K, 1), packLines(w, N, K, 1, N), matmulXW, [x, w]],
              [{ m: K, n: N, k: B }, packLines(x, K, B, 1, K), packLines(e, N, B, 1, N), matmulXtE, [x, e]],
              [{ m: B, n: K, k: N }, packLines(e, B, N, N, 1), packLines(w, K, N, N, 1), matmulEWt, [e, w]],
            ] as const;
            for (const [shape, a, b, twin, [p, q]] of cases) {
              const expected = new Int32Array(shape.m * shape.n);
              twin(p, q, B, K, N, expected);
              const got = await runMatmulPacked(ctx(), a, b, shape, { packed });
              expect(firstMismatch(got, expected)).toBeNull();
            }
          },
        ),
        { numRuns: 6 },
      );
    });
  }
});

describe('activation.wgsl vs activation.ts', () => {
  const z = [
    ...randomI32(3000, 5, 22),
    ...randomI32(500, 6, 32),
    0,
    1,
    -1,
    65535,
    65536,
    65537,
    -65536,
    -65537,
    115933,
    -115933,
    I32_MAX,
    I32_MIN + 1,
  ];
  const g = randomI32(z.length, 7, 28, [I32_MIN, I32_MAX, 0, -1, 1, 7, -7]);
  for (const act of ACTIVATIONS) {
    it(`${act}: forward and backward`, async () => {
      const zs = Int32Array.from(act === 'gelu' ? z.map((v) => v >> 4) : z); // gelu: |z·2^17| < 2^53
      const inputs = Array.from(zs, (v, i): [number, number, number] => [v, g[i], 0]);
      const h = new Int32Array(zs.length);
      activate(act, zs, h, zs.length);
      expect(
        firstMismatch(await evaluate(ctx(), `activate(${ACTIVATION_CODE[act]}u, a)`, inputs), h, inputs),
      ).toBeNull();
      const gz = new Int32Array(zs.length);
      activationBackward(act, zs, g, gz, zs.length);
      const gpu = await evaluate(ctx(), `activate_backward(${ACTIVATION_CODE[act]}u, a, b)`, inputs);
      expect(firstMismatch(gpu, gz, inputs)).toBeNull();
    });
  }
});

describe('softmax-xent.wgsl vs softmax-xent.ts', () => {
  const rowsOf = (B: number, C: number, seed: number, bits: number) => {
    const z = randomI32(B * C, seed, bits);
    const y = Uint32Array.from({ length: B }, (_, b) => (b * 7 + seed) % C);
    return { z, y };
  };
  const cases: [string, number, number, Int32Array, Uint32Array][] = [
    ['typical logits', 33, 10, ...Object.values(rowsOf(33, 10, 1, 20))] as never,
    ['far-apart logits (floor −32)', 8, 4, ...Object.values(rowsOf(8, 4, 2, 32))] as never,
    [
      'ties and zeros',
      4,
      3,
      Int32Array.from([0, 0, 0, 5, 5, 1, -7, 9, 9, 0, 0, 0]),
      Uint32Array.from([0, 1, 2, 2]),
    ],
    ['256 classes', 3, 256, ...Object.values(rowsOf(3, 256, 3, 21))] as never,
  ];
  for (const [name, B, C, z, y] of cases) {
    it(name, async () => {
      const pipeline = await ctx().pipeline(kernelCode('softmaxXent'), 'main', { TRAIN: 1, PER_STEP: 0 });
      const gz = storageBuffer(ctx().device, B * C * 4);
      const stats = storageBuffer(ctx().device, B * 8);
      const maxes = u32Buffer([0, 0, 0]);
      await dispatchOnce(
        ctx(),
        pipeline,
        [
          uniformBuffer(ctx().device, [B, C, B, 0, 2]),
          i32Buffer(ctx(), z),
          u32Buffer(y),
          u32Buffer([0, 0]),
          maxes,
          gz,
          stats,
        ],
        [Math.ceil(B / 64)],
      );
      const expectedGz = new Int32Array(B * C);
      const expectedStats: number[] = [];
      for (let b = 0; b < B; b++) {
        const row = softmaxXent(z.subarray(b * C, (b + 1) * C), [y[b]], 1, C, expectedGz.subarray(b * C), B);
        expectedStats.push(row.lossQ16, row.correct);
      }
      expect(firstMismatch(await readI32(ctx(), gz, B * C), expectedGz)).toBeNull();
      expect(firstMismatch(await readI32(ctx(), stats, 2 * B), expectedStats)).toBeNull();
      const maxGz = Math.max(...Array.from(expectedGz, Math.abs));
      expect(new Uint32Array(await readBack(ctx().device, maxes, 12))[2]).toBe(maxGz);
    });
  }
});

describe('sgd.wgsl vs rescaleAll + columnSums + sgdStep', () => {
  const configs = [
    { lr: 6554, mom: 58982, wd: 100, sx: NONE, se: 1 << 20, label: 'input layer, weight decay' },
    { lr: 1 << 17, mom: 1 << 16, wd: 0, sx: 1 << 30, se: 1 << 24, label: 'lr 2, momentum 1, large shifts' },
    { lr: 0, mom: 0, wd: 1 << 20, sx: 100, se: 0, label: 'lr 0, shifts 0' },
  ];
  for (const c of configs) {
    it(c.label, async () => {
      const [K, N, B] = [37, 11, 9];
      const acc = randomI32(K * N, 11, 20, [I32_MIN, I32_MAX, 0]);
      const gz = randomI32(B * N, 12, 30, [I32_MIN, I32_MAX]);
      const w = randomI32(K * N + N, 13, 28, [I32_MIN, I32_MAX]);
      const v = randomI32(K * N + N, 14, 30, [I32_MIN, I32_MAX]);
      const maxes = [c.sx === NONE ? 0 : c.sx, c.se, 0];
      const pipeline = await ctx().pipeline(kernelCode('sgd'));
      const bufs = [
        uniformBuffer(ctx().device, [K, N, B, c.sx === NONE ? NONE : 0, 1, c.lr, c.mom, c.wd, 2]),
        i32Buffer(ctx(), acc),
        i32Buffer(ctx(), gz),
        u32Buffer(maxes),
        i32Buffer(ctx(), w.subarray(0, K * N)),
        i32Buffer(ctx(), v.subarray(0, K * N)),
        i32Buffer(ctx(), w.subarray(K * N)),
        i32Buffer(ctx(), v.subarray(K * N)),
      ];
      await dispatchOnce(ctx(), pipeline, bufs, [Math.ceil((K * N + N) / 256)]);
      const shift = (m: number) => Math.max(0, 32 - Math.clz32(m) - 7);
      const g = new Int32Array(K * N + N);
      rescaleAll(acc, (c.sx === NONE ? 9 : shift(c.sx)) + shift(c.se) - 16, g, K * N);
      columnSums(gz, B, N, g.subarray(K * N));
      const [ew, ev] = [w.slice(), v.slice()];
      sgdStep(ew, ev, g, K * N + N, c.lr, c.mom, c.wd);
      const got = [...(await readI32(ctx(), bufs[4], K * N)), ...(await readI32(ctx(), bufs[6], N))];
      const gotV = [...(await readI32(ctx(), bufs[5], K * N)), ...(await readI32(ctx(), bufs[7], N))];
      expect(firstMismatch(got, ew)).toBeNull();
      expect(firstMismatch(gotV, ev)).toBeNull();
      // max |W| after the update (weights only), for the next step's quantisation.
      const maxW = Math.max(...Array.from(ew.subarray(0, K * N), Math.abs));
      expect(new Uint32Array(await readBack(ctx().device, bufs[3], 12))[2]).toBe(maxW);
    });
  }
});

describe('forward.wgsl vs rescaleAddBias + activate', () => {
  for (const act of [null, ...ACTIVATIONS]) {
    it(`${act ?? 'output layer'} with residual ${act !== null}`, async () => {
      const [rows, N] = [13, 21];
      const residual = act !== null;
      const acc = randomI32(rows * N, 21, 24, [I32_MIN, I32_MAX, 0]);
      const bias = randomI32(N, 22, 30, [I32_MIN, I32_MAX]);
      const hIn = randomI32(rows * N, 23, 22);
      const maxSx = 1 << 27;
      const maxSw = 300;
      const pipeline = await ctx().pipeline(kernelCode('forward'), 'main', {
        ACT: act ? ACTIVATION_CODE[act] : 0,
        RESIDUAL: residual ? 1 : 0,
      });
      const maxes = u32Buffer([maxSx, maxSw, 0]);
      const z = storageBuffer(ctx().device, rows * N * 4);
      const h = storageBuffer(ctx().device, rows * N * 4);
      await dispatchOnce(
        ctx(),
        pipeline,
        [
          uniformBuffer(ctx().device, [rows, N, 0, 1, 2]),
          i32Buffer(ctx(), acc),
          i32Buffer(ctx(), bias),
          i32Buffer(ctx(), hIn),
          maxes,
          z,
          h,
        ],
        [Math.ceil((rows * N) / 256)],
      );
      const ez = new Int32Array(rows * N);
      rescaleAddBias(acc, rows, N, 21 + 2 - 24, bias, 8, ez);
      const eh = new Int32Array(rows * N);
      if (act) activate(act, ez, eh, rows * N);
      else eh.set(ez);
      if (residual) for (let i = 0; i < eh.length; i++) eh[i] = (eh[i] + hIn[i]) | 0;
      expect(firstMismatch(await readI32(ctx(), z, rows * N), ez)).toBeNull();
      expect(firstMismatch(await readI32(ctx(), h, rows * N), eh)).toBeNull();
      const max = new Uint32Array(await readBack(ctx().device, maxes, 12))[2];
      expect(max).toBe(Math.max(...Array.from(eh, Math.abs)));
    });
  }
});

describe('backward.wgsl vs rescaleAll + residual + activationBackward', () => {
  for (const act of ACTIVATIONS) {
    it(act, async () => {
      const count = 300;
      const acc = randomI32(count, 31, 20, [I32_MIN, I32_MAX, 0]);
      const z = randomI32(count, 32, 20, [0, 65536, -65536]);
      const res = randomI32(count, 33, 26);
      const pipeline = await ctx().pipeline(kernelCode('backward'), 'main', {
        ACT: ACTIVATION_CODE[act],
        RESIDUAL: 1,
      });
      const maxes = u32Buffer([5000, 1 << 22, 0]);
      const gh = storageBuffer(ctx().device, count * 4);
      const gz = storageBuffer(ctx().device, count * 4);
      await dispatchOnce(
        ctx(),
        pipeline,
        [
          uniformBuffer(ctx().device, [count, 0, 1, 2]),
          i32Buffer(ctx(), acc),
          i32Buffer(ctx(), z),
          i32Buffer(ctx(), res),
          maxes,
          gh,
          gz,
        ],
        [2],
      );
      const eg = new Int32Array(count);
      rescaleAll(acc, 6 + 16 - 24, eg, count);
      for (let i = 0; i < count; i++) eg[i] = (eg[i] + res[i]) | 0;
      const egz = new Int32Array(count);
      activationBackward(act, z, eg, egz, count);
      expect(firstMismatch(await readI32(ctx(), gh, count), eg)).toBeNull();
      expect(firstMismatch(await readI32(ctx(), gz, count), egz)).toBeNull();
    });
  }
});

describe('gather.wgsl vs the CPU input operand (pixel >> 1, both layouts, labels, Q16 input)', () => {
  for (const [features, perStep] of [
    [7, true],
    [8, false],
    [13, true],
  ] as const) {
    it(`${features} features, ${perStep ? 'per step' : 'validation'} indexing`, async () => {
      const count = 11;
      const rows = 5;
      const pixels = Uint8Array.from(randomI32(count * features, features, 32), (v) => v & 0xff);
      const labels = Uint8Array.from({ length: count }, (_, i) => (i * 3) % 10);
      const order = Uint32Array.from([3, 9, 0, 10, 4, 7, 1, 2, 8, 6, 5, 3, 3, 0, 1]);
      const [base, local] = perStep ? [2, 1] : [4, 0];
      const first = base + (perStep ? local * rows : 0);
      const x8 = new Int8Array(rows * features);
      for (let b = 0; b < rows; b++)
        for (let f = 0; f < features; f++)
          x8[b * features + f] = pixels[order[first + b] * features + f] >> 1;
      const pack = (bytes: Uint8Array) => {
        const words = new Uint32Array(Math.ceil(bytes.length / 4));
        new Uint8Array(words.buffer).set(bytes);
        return words;
      };
      const fw = Math.ceil(features / 4);
      const rw = Math.ceil(rows / 4);
      const byRow = storageBuffer(ctx().device, rows * fw * 4);
      const byCol = storageBuffer(ctx().device, features * rw * 4);
      const y = storageBuffer(ctx().device, rows * 4);
      const wide = storageBuffer(ctx().device, rows * features * 4);
      const pipeline = await ctx().pipeline(kernelCode('gather'), 'main', {
        PER_STEP: perStep ? 1 : 0,
        WIDEN: 1,
      });
      await dispatchOnce(
        ctx(),
        pipeline,
        [
          uniformBuffer(ctx().device, [rows, features, base, 0]),
          u32Buffer(pack(pixels)),
          u32Buffer(pack(labels)),
          u32Buffer(order),
          u32Buffer([0, local, 0, 0]),
          byRow,
          byCol,
          y,
          wide,
        ],
        [1],
      );
      const words = async (b: GPUBuffer, n: number) =>
        new Uint32Array(await readBack(ctx().device, b, n * 4));
      expect(
        firstMismatch(await words(byRow, rows * fw), packLines(x8, rows, features, features, 1)),
      ).toBeNull();
      expect(
        firstMismatch(await words(byCol, features * rw), packLines(x8, features, rows, 1, features)),
      ).toBeNull();
      const expectedY = Array.from({ length: rows }, (_, b) => labels[order[first + b]]);
      expect(firstMismatch(await words(y, rows), expectedY)).toBeNull();
      expect(
        firstMismatch(
          await readI32(ctx(), wide, rows * features),
          Array.from(x8, (q) => q << 9),
        ),
      ).toBeNull();
    });
  }
});
