/**
 * fixed.wgsl and rng.wgsl against their CPU twins (fixed.ts, rng.ts), bit for bit, on random and
 * edge-case inputs: every primitive is evaluated elementwise by a small test kernel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { divRound, exp2Q15, log2Q16, mulShr, rescale, shrRound } from '../ops/fixed.ts';
import { mix, rand, rngKey } from '../ops/rng.ts';
import { dawnContext, evaluate } from './test-harness.ts';

const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;
const EDGES = [
  0,
  1,
  -1,
  2,
  -2,
  127,
  -128,
  0x7fff,
  0x8000,
  -0x8000,
  0xffff,
  1 << 24,
  -(1 << 24),
  I32_MAX,
  I32_MIN,
];
const i32 = fc.oneof(fc.integer({ min: I32_MIN, max: I32_MAX }), fc.constantFrom(...EDGES));

function sample<T>(arb: fc.Arbitrary<T>, n: number, seed: number): T[] {
  return fc.sample(arb, { numRuns: n, seed });
}

describe('fixed.wgsl and rng.wgsl on Dawn match fixed.ts and rng.ts', () => {
  const ctx = dawnContext();

  async function check(
    expression: string,
    inputs: [number, number, number][],
    twin: (a: number, b: number, c: number) => number,
  ) {
    const gpu = await evaluate(ctx(), expression, inputs);
    const cpu = inputs.map(([a, b, c]) => twin(a, b, c) | 0);
    const bad = inputs.findIndex((_, i) => gpu[i] !== cpu[i]);
    expect(bad === -1 ? null : { input: inputs[bad], gpu: gpu[bad], cpu: cpu[bad] }).toBeNull();
  }

  it('shr_round and rescale, shifts 0 to 40 both ways', async () => {
    const inputs = sample(fc.tuple(i32, fc.integer({ min: -40, max: 40 }), fc.constant(0)), 2000, 1);
    for (const a of EDGES) for (const k of [-33, -32, -31, -1, 0, 1, 7, 30, 31, 32]) inputs.push([a, k, 0]);
    await check('shr_round(a, b)', inputs, (a, k) => shrRound(a, k));
    await check('rescale(a, b)', inputs, (a, k) => rescale(a, k));
  });

  it('mul_shr by 16-bit limbs, products up to 2^53, shifts 0 to 40', async () => {
    // The contract bounds |a·b| < 2^53, so the CPU twin's float64 is exact.
    const bounded = fc
      .tuple(i32, fc.integer({ min: 0, max: 22 }), fc.integer({ min: 0, max: 40 }))
      .map(([a, bits, k]): [number, number, number] => [a, ((a * 7919) % 2 ** bits) | 0, k])
      .filter(([a, b]) => Math.abs(a * b) < 2 ** 53);
    const inputs = sample(bounded, 2000, 2);
    const big = sample(
      fc.tuple(
        fc.integer({ min: -(2 ** 26), max: 2 ** 26 }),
        fc.integer({ min: -(2 ** 26), max: 2 ** 26 }),
        fc.integer({ min: 0, max: 40 }),
      ),
      1000,
      3,
    );
    inputs.push(
      ...big,
      [I32_MIN, 1, 0],
      [I32_MIN, -1, 0],
      [I32_MIN, 1 << 21, 24],
      [I32_MAX, -(1 << 21), 16],
      [0, 0, 16],
      [-1, 1, 1],
      [1, 1, 1],
    );
    await check('mul_shr(a, b, u32(c))', inputs, (a, b, k) => mulShr(a, b, k));
    // k = 16 has its own 32-bit path (mul_shr16): full-range a against |b| ≤ 2^21, and edges.
    const k16 = sample(fc.tuple(i32, fc.integer({ min: -(2 ** 21), max: 2 ** 21 })), 3000, 8).map(
      ([a, b]): [number, number, number] => [a, b, 16],
    );
    for (const a of EDGES)
      for (const b of [0, 1, -1, 0xffff, 0x10000, -0x10000, 0x1ffff, 1 << 21, -(1 << 21)])
        k16.push([a, b, 16]);
    await check('mul_shr(a, b, u32(c))', k16, (a, b, k) => mulShr(a, b, k));
  });

  it('div_round over the softmax range', async () => {
    const inputs = sample(
      fc.tuple(
        fc.integer({ min: -(2 ** 25), max: 2 ** 25 }),
        fc.integer({ min: 1, max: 1024 }),
        fc.constant(0),
      ),
      2000,
      4,
    );
    inputs.push([-(2 ** 24), 1, 0], [2 ** 24, 1024, 0], [-1, 2, 0], [1, 2, 0], [-3, 2, 0], [0, 7, 0]);
    await check('div_round(a, b)', inputs, (a, d) => divRound(a, d));
  });

  it('exp2_q15 on t ≤ 0 and log2_q16 on 1 ≤ s < 2^31', async () => {
    const ts = sample(fc.integer({ min: -48 * 65536, max: 0 }), 3000, 5).map(
      (t): [number, number, number] => [t, 0, 0],
    );
    ts.push([0, 0, 0], [-1, 0, 0], [-65536, 0, 0], [-48 * 65536, 0, 0]);
    await check('exp2_q15(a)', ts, (t) => exp2Q15(t));
    const ss = sample(
      fc.oneof(fc.integer({ min: 1, max: 1 << 24 }), fc.integer({ min: 1, max: I32_MAX })),
      3000,
      6,
    ).map((s): [number, number, number] => [s, 0, 0]);
    ss.push([1, 0, 0], [2, 0, 0], [3, 0, 0], [1 << 22, 0, 0], [(1 << 23) + 1, 0, 0], [I32_MAX, 0, 0]);
    await check('log2_q16(u32(a))', ss, (s) => log2Q16(s));
  });

  it('rng_mix, rng_key, rng_rand', async () => {
    const inputs = sample(fc.tuple(i32, i32, fc.integer({ min: 0, max: 0x400 })), 2000, 7);
    await check('bitcast<i32>(rng_mix(u32(a)))', inputs, (a) => mix(a >>> 0));
    await check('bitcast<i32>(rng_key(u32(a), u32(b), u32(c)))', inputs, (a, b, c) =>
      rngKey(a >>> 0, b >>> 0, c),
    );
    await check('bitcast<i32>(rng_rand(u32(a), u32(b)))', inputs, (a, b) => rand(a >>> 0, b >>> 0));
  });
});
