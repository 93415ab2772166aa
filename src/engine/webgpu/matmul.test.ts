import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuSession } from '../../gpu/device.ts';
import { createNodeGpuSession } from '../../gpu/node.ts';
import { matmulXW } from '../ops/matmul.ts';
import { runMatmulI8 } from './matmul.ts';

function cpuMatmul(a: Int8Array, b: Int8Array, m: number, k: number, n: number): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += a[i * k + t] * b[t * n + j];
      c[i * n + j] = sum;
    }
  return c;
}

function randomInt8(length: number, seed: number): Int8Array {
  const out = new Int8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('runMatmulI8 on Dawn', () => {
  let session: GpuSession;
  let packed = false;
  beforeAll(async () => {
    session = await createNodeGpuSession();
    packed = await session.hasPackedDot();
  });
  afterAll(() => session?.destroy());

  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [32, 32, 32],
    [33, 67, 35],
    [64, 784, 10],
    [5, 0, 3],
  ];
  for (const [m, k, n] of shapes) {
    it(`matches a CPU loop at ${m}×${k}×${n}, plain and packed paths`, async () => {
      const a = randomInt8(m * k, m * 1000 + k);
      const b = randomInt8(k * n, n * 7 + 3);
      const expected = cpuMatmul(a, b, m, k, n);
      const twin = new Int32Array(m * n);
      matmulXW(a, b, m, k, n, twin);
      expect(twin).toEqual(expected);
      expect(await runMatmulI8(session, a, b, m, k, n, { packed: false })).toEqual(expected);
      if (packed) expect(await runMatmulI8(session, a, b, m, k, n, { packed: true })).toEqual(expected);
    });
  }

  it('handles the extremes: all −128 and all 127 at K = 2048', async () => {
    const [m, k, n] = [4, 2048, 4];
    for (const [x, y] of [
      [-128, -128],
      [127, -128],
      [0, 127],
    ]) {
      const a = new Int8Array(m * k).fill(x);
      const b = new Int8Array(k * n).fill(y);
      const expected = cpuMatmul(a, b, m, k, n);
      expect(expected[0]).toBe(x * y * k);
      expect(await runMatmulI8(session, a, b, m, k, n, { packed: false })).toEqual(expected);
      if (packed) expect(await runMatmulI8(session, a, b, m, k, n, { packed: true })).toEqual(expected);
    }
  });

  it('gives identical bits on both paths for random shapes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        async (m, k, n, seed) => {
          const a = randomInt8(m * k, seed);
          const b = randomInt8(k * n, seed ^ 0x5bd1e995);
          const plain = await runMatmulI8(session, a, b, m, k, n, { packed: false });
          expect(plain).toEqual(cpuMatmul(a, b, m, k, n));
          if (packed) expect(await runMatmulI8(session, a, b, m, k, n, { packed: true })).toEqual(plain);
        },
      ),
      { numRuns: 10 },
    );
  });
});
