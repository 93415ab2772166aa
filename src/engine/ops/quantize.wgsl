// Quantisation of an i32 tensor to int8 operands (twin: quantize.ts), four elements per thread,
// written packed (element e is byte e & 3 of word e >> 2). The shift comes from maxes[slot], filled
// by maxabs.wgsl (or a fused epilogue) earlier in the same pass, so nothing is read back.
//   STOCHASTIC = false: round half to even.
//   STOCHASTIC = true:  ⌊(x + r) / 2^s⌋ with r = rng_rand(rng_key(seed, step, tensor), e) mod 2^s,
//                       step = state[0], the current training step.
// Needs fixed.wgsl and rng.wgsl. Dispatch: ceil(n / 4 / 256) workgroups.

override STOCHASTIC: bool = false;

struct Params {
  n: u32,
  slot: u32,
  tensor: u32,
  seed: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> maxes: array<u32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> q: array<u32>;

fn clamp127(v: i32) -> i32 {
  return clamp(v, -127, 127);
}

fn round_even(v: i32, s: u32) -> i32 {
  let fl = v >> s;
  let r = u32(v) & ((1u << s) - 1u);
  let half = 1u << (s - 1u);
  let up = r > half || (r == half && (fl & 1) == 1);
  return fl + select(0, 1, up);
}

fn round_stochastic(v: i32, s: u32, key: u32, e: u32) -> i32 {
  let mask = (1u << s) - 1u;
  let r = rng_rand(key, e) & mask;
  return (v >> s) + i32(((u32(v) & mask) + r) >> s);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let word = gid.x + gid.y * groups.x * 256u;
  let e0 = word * 4u;
  if (e0 >= p.n) { return; }
  let s = quant_shift(maxes[p.slot]);
  var key = 0u;
  if (STOCHASTIC) { key = rng_key(p.seed, state[0], p.tensor); }
  var packed = 0u;
  for (var t = 0u; t < 4u; t++) {
    let e = e0 + t;
    if (e >= p.n) { break; }
    var v = x[e];
    if (s > 0u) {
      if (STOCHASTIC) { v = round_stochastic(v, s, key, e); } else { v = round_even(v, s); }
    }
    packed = insertBits(packed, u32(clamp127(v)), t * 8u, 8u);
  }
  q[word] = packed;
}
