// Fixed-point primitives of the arithmetic contract (twin: fixed.ts). Pure i32/u32 arithmetic:
// products wider than 32 bits are taken exactly with 16-bit limbs, never with floats.

const I32_MAX: i32 = 2147483647;
const I32_MIN: i32 = -2147483647 - 1;

fn bitlen(m: u32) -> u32 {
  return 32u - countLeadingZeros(m);
}

// |x| as u32, so |−2^31| = 2^31.
fn abs_u32(x: i32) -> u32 {
  return select(u32(x), 0u - u32(x), x < 0);
}

// The quantisation shift for a max-abs m: the least s ≥ 0 with m >> s ≤ 127.
fn quant_shift(m: u32) -> u32 {
  return max(bitlen(m), 7u) - 7u;
}

// ⌊(a + 2^(k−1)) / 2^k⌋ (round half up) for k ≥ 1, a for k ≤ 0, 0 for k ≥ 32.
fn shr_round(a: i32, k: i32) -> i32 {
  if (k <= 0) { return a; }
  if (k >= 32) { return 0; }
  return (a >> u32(k)) + ((a >> u32(k - 1)) & 1);
}

// k ≥ 0: a · 2^k saturated to i32; k < 0: shr_round(a, −k).
fn rescale(a: i32, k: i32) -> i32 {
  if (k < 0) { return shr_round(a, -k); }
  if (a == 0) { return 0; }
  if (k >= 31) { return select(I32_MIN, I32_MAX, a > 0); }
  if (a > (I32_MAX >> u32(k))) { return I32_MAX; }
  if (a < (I32_MIN >> u32(k))) { return I32_MIN; }
  return a << u32(k);
}

// Exact u32 × u32 as (lo, hi) by 16-bit limbs.
fn mul_u32_wide(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let m1 = a0 * b1;
  let m2 = a1 * b0;
  var lo = a0 * b0;
  var hi = a1 * b1 + (m1 >> 16u) + (m2 >> 16u);
  let t1 = lo + (m1 << 16u);
  hi += select(0u, 1u, t1 < lo);
  let t2 = t1 + (m2 << 16u);
  hi += select(0u, 1u, t2 < t1);
  lo = t2;
  return vec2<u32>(lo, hi);
}

// Two's-complement 64-bit helpers on (lo, hi).
fn neg64(x: vec2<u32>) -> vec2<u32> {
  let lo = ~x.x + 1u;
  return vec2<u32>(lo, ~x.y + select(0u, 1u, lo == 0u));
}

fn add64(x: vec2<u32>, y: vec2<u32>) -> vec2<u32> {
  let lo = x.x + y.x;
  return vec2<u32>(lo, x.y + y.y + select(0u, 1u, lo < x.x));
}

// Arithmetic shift right of a signed 64-bit value by 0 ≤ k < 64, low 32 bits of the result.
fn sar64_lo(x: vec2<u32>, k: u32) -> i32 {
  if (k == 0u) { return bitcast<i32>(x.x); }
  if (k < 32u) { return bitcast<i32>((x.x >> k) | (x.y << (32u - k))); }
  return bitcast<i32>(x.y) >> (k - 32u);
}

// Exact signed product a·b as a 64-bit value.
fn mul64(a: i32, b: i32) -> vec2<u32> {
  let p = mul_u32_wide(abs_u32(a), abs_u32(b));
  return select(p, neg64(p), (a < 0) != (b < 0));
}

// mul_shr(a, b, 16) in 32-bit arithmetic. With a = a1·2^16 + a0 and b = b1·2^16 + b0 (a1, b1 signed
// high halves, a0, b0 unsigned low halves): a·b + 2^15 = 2^16·(a1·b + a0·b1) + (a0·b0 + 2^15), so
// the floor quotient is a1·b + a0·b1 + ((a0·b0 + 2^15) >> 16) exactly; a0·b0 + 2^15 < 2^32 fits u32,
// and the other terms may wrap because the result is taken mod 2^32 anyway.
fn mul_shr16(a: i32, b: i32) -> i32 {
  let a0 = u32(a) & 0xffffu;
  let b0 = u32(b) & 0xffffu;
  let low = (a0 * b0 + 0x8000u) >> 16u;
  return (a >> 16u) * b + i32(a0) * (b >> 16u) + i32(low);
}

// ⌊(a·b + 2^(k−1)) / 2^k⌋ with the product exact, wrapped to i32 (0 ≤ k < 64).
fn mul_shr(a: i32, b: i32, k: u32) -> i32 {
  if (k == 16u) { return mul_shr16(a, b); }
  var p = mul64(a, b);
  if (k == 0u) { return bitcast<i32>(p.x); }
  var half = vec2<u32>(0u, 0u);
  if (k <= 32u) { half.x = 1u << (k - 1u); } else { half.y = 1u << (k - 33u); }
  return sar64_lo(add64(p, half), k);
}

// ⌊a / d⌋ for d > 0 (WGSL's i32 division truncates toward zero).
fn floor_div(a: i32, d: i32) -> i32 {
  let q = a / d;
  return select(q, q - 1, q * d > a);
}

// a / d rounded half up, ⌊(2a + d) / (2d)⌋, for d > 0 and |2a + d| < 2^31.
fn div_round(a: i32, d: i32) -> i32 {
  return floor_div(2 * a + d, 2 * d);
}

// 2^f − 1 ≈ f·(c1 + f·(c2 + f·(c3 + f·c4))), coefficients Q29 (twin: EXP2_POLY_Q29).
const EXP2_C1: i32 = 372060944;
const EXP2_C2: i32 = 129626762;
const EXP2_C3: i32 = 27889345;
const EXP2_C4: i32 = 7291600;

// 2^t as Q15 for t ≤ 0 in Q16 (twin: exp2Q15).
fn exp2_q15(t: i32) -> i32 {
  let i = t >> 16u;
  let f = t & 0xffff;
  var acc = EXP2_C4;
  acc = mul_shr(acc, f, 16u) + EXP2_C3;
  acc = mul_shr(acc, f, 16u) + EXP2_C2;
  acc = mul_shr(acc, f, 16u) + EXP2_C1;
  let p = mul_shr(acc, f, 16u) + (1 << 29u);
  return shr_round(p, 14 - i);
}

// log2(1 + x) ≈ x·(c1 + x·(c2 + … + x·c6)), coefficients Q29 (twin: LOG2_POLY_Q29).
const LOG2_C = array<i32, 6>(774454962, -385491345, 245434881, -148896631, 65215264, -13847150);

// log2(s) in Q16 for 1 ≤ s < 2^31 (twin: log2Q16).
fn log2_q16(s: u32) -> i32 {
  let n = bitlen(s) - 1u;
  let rest = s - (1u << n);
  var x: i32;
  if (n <= 22u) { x = bitcast<i32>(rest << (22u - n)); } else { x = bitcast<i32>(rest >> (n - 22u)); }
  var acc = LOG2_C[5];
  for (var k = 4; k >= 0; k--) { acc = mul_shr(acc, x, 22u) + LOG2_C[k]; }
  let p = mul_shr(acc, x, 22u);
  return i32(n) * 65536 + shr_round(p, 13);
}
