/**
 * Fixed-point helpers of the arithmetic contract (docs/ARITHMETIC.md, "Primitive operations").
 *
 * Every function works on i32 values held in JS numbers and returns an i32, exactly as the WGSL
 * twins compute it with wrapping u32/i32 arithmetic. Where an intermediate does not fit 32 bits the
 * CPU twin uses float64, which is exact below 2^53 (the callers' bound, stated per function).
 */

export const ONE_Q16 = 1 << 16;

/** Number of significant bits of a u32 (0 for 0). */
export function bitlen(m: number): number {
  return 32 - Math.clz32(m);
}

/** ⌊(a + 2^(k−1)) / 2^k⌋ for k ≥ 1 (round half up), a for k = 0, 0 for k ≥ 32; never overflows. */
export function shrRound(a: number, k: number): number {
  if (k <= 0) return a | 0;
  if (k >= 32) return 0;
  return ((a >> k) + ((a >> (k - 1)) & 1)) | 0;
}

/** k ≥ 0: a · 2^k saturated to i32; k < 0: shrRound(a, −k). */
export function rescale(a: number, k: number): number {
  if (k < 0) return shrRound(a, -k);
  if (a === 0) return 0;
  if (k >= 31) return a > 0 ? 0x7fffffff : -0x80000000;
  const v = a * 2 ** k;
  if (v > 0x7fffffff) return 0x7fffffff;
  if (v < -0x80000000) return -0x80000000;
  return v;
}

/**
 * Wraps an integer-valued float64 to i32 (two's complement), like WGSL's wrapping arithmetic:
 * ECMAScript's ToInt32 (`| 0`) is exactly "modulo 2^32" for every finite number.
 */
export function wrapI32(v: number): number {
  return v | 0;
}

/** ⌊(a·b + 2^(k−1)) / 2^k⌋ with the product exact, wrapped to i32. Needs |a·b| < 2^52, 0 ≤ k ≤ 52. */
export function mulShr(a: number, b: number, k: number): number {
  if (k === 0) return (a * b) | 0;
  return Math.floor((a * b + 2 ** (k - 1)) / 2 ** k) | 0;
}

/** a / d rounded half up, ⌊(2a + d) / (2d)⌋ exactly, for d > 0 and |a| < 2^51. */
export function divRound(a: number, d: number): number {
  const num = 2 * a + d;
  const den = 2 * d;
  let q = Math.floor(num / den);
  if (q * den > num) q -= 1;
  else if ((q + 1) * den <= num) q += 1;
  return q;
}

/** ⌊√n⌋ for an integer 0 ≤ n < 2^52. */
export function isqrt(n: number): number {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r -= 1;
  while ((r + 1) * (r + 1) <= n) r += 1;
  return r;
}

/**
 * 2^f − 1 ≈ f·(c1 + f·(c2 + f·(c3 + f·c4))) on f ∈ [0, 1), coefficients Q29 (least squares,
 * |error| < 4.3e-6, below the Q15 output's resolution).
 */
export const EXP2_POLY_Q29 = [372060944, 129626762, 27889345, 7291600] as const;

/**
 * 2^t as Q15 for t ≤ 0 given in Q16 (t = 0 gives exactly 2^15). The integer part shifts, the
 * fraction goes through EXP2_POLY_Q29 by Horner with mulShr(·, f, 16); the result is rounded half up.
 */
export function exp2Q15(t: number): number {
  const i = t >> 16; // floor(t), ≤ 0
  const f = t & 0xffff; // t − i in Q16, in [0, 1)
  let acc = EXP2_POLY_Q29[3];
  acc = mulShr(acc, f, 16) + EXP2_POLY_Q29[2];
  acc = mulShr(acc, f, 16) + EXP2_POLY_Q29[1];
  acc = mulShr(acc, f, 16) + EXP2_POLY_Q29[0];
  const p = mulShr(acc, f, 16) + (1 << 29); // 2^f in Q29, in [2^29, 2^30)
  return shrRound(p, 14 - i);
}

/**
 * log2(1 + x) ≈ x·(c1 + x·(c2 + … + x·c6)) on x ∈ [0, 1), coefficients Q29 (least squares,
 * |error| < 2.5e-6, below the Q16 output's resolution).
 */
export const LOG2_POLY_Q29 = [774454962, -385491345, 245434881, -148896631, 65215264, -13847150] as const;

/**
 * log2(s) in Q16 for an integer 1 ≤ s < 2^31. The exponent is bitlen(s) − 1; the mantissa fraction
 * is taken in Q22 (truncated when s ≥ 2^23) and goes through LOG2_POLY_Q29 by Horner.
 */
export function log2Q16(s: number): number {
  const n = bitlen(s) - 1;
  const rest = s - 2 ** n;
  const x = n <= 22 ? rest * 2 ** (22 - n) : Math.floor(rest / 2 ** (n - 22)); // Q22 fraction
  let acc: number = LOG2_POLY_Q29[5];
  for (let k = 4; k >= 0; k--) acc = mulShr(acc, x, 22) + LOG2_POLY_Q29[k];
  const p = mulShr(acc, x, 22); // log2(1 + x) in Q29
  return n * ONE_Q16 + shrRound(p, 13);
}
