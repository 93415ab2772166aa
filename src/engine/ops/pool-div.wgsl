// Exact division for the average pools (twins: gap.ts divRoundHalfEven): round_half_even(S / n) for
// a 64-bit signed S = hi·2^32 + lo with |S| ≤ n·2^31, and 1 ≤ n ≤ 2^16. No 64-bit types in WGSL:
// S' = S + n·2^31 is in [0, n·2^32), so its high word is < n and two 16-bit long-division steps
// give ⌊S'/n⌋ = ⌊S/n⌋ + 2^31 (< 2^32) and the remainder r (< n, so 2r fits).

// (lo, hi) += v, sign-extended.
fn add_i64(acc: vec2<u32>, v: i32) -> vec2<u32> {
  let lo = acc.x + u32(v);
  let hi = acc.y + select(0u, 0xffffffffu, v < 0) + select(0u, 1u, lo < acc.x);
  return vec2<u32>(lo, hi);
}

fn div_round_even_i64(s: vec2<u32>, n: u32) -> i32 {
  let lo = s.x + select(0u, 0x80000000u, (n & 1u) == 1u);
  let hi = s.y + (n >> 1u) + select(0u, 1u, lo < s.x);
  let mid = (hi << 16u) | (lo >> 16u); // hi < n ≤ 2^16: hi·2^16 + (lo >> 16) < 2^32
  let q1 = mid / n;
  let low = ((mid % n) << 16u) | (lo & 0xffffu);
  let q0 = low / n;
  let r = low % n;
  let q = i32(((q1 << 16u) + q0) - 0x80000000u);
  let up = 2u * r > n || (2u * r == n && (q & 1) != 0);
  return q + select(0, 1, up);
}
