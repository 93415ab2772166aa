// Quantisation of an i32 tensor x[rows][cols] to int8 operands (twin: quantize.ts). The shift comes
// from maxes[slot], filled by maxabs.wgsl or a fused epilogue earlier in the same pass, so nothing is
// read back.
//   STOCHASTIC = false: round half to even.
//   STOCHASTIC = true:  ⌊(x + r) / 2^s⌋ with r = rng_rand(rng_key(seed, step, tensor), e) mod 2^s,
//                       e = the element's row-major index, step = state[0] (the training step).
// Writes both k-packed layouts matmul.wgsl reads (four int8 to a word, lines zero-padded to words):
//   by_row: rows lines of ceil(cols / 4) words;  by_col: cols lines of ceil(rows / 4) words.
// One thread per output word. Needs fixed.wgsl and rng.wgsl.
// Dispatch: ceil((rows · ceil(cols/4) + cols · ceil(rows/4)) / 256) workgroups (2-D when large).

override STOCHASTIC: bool = false;

struct Params {
  rows: u32,
  cols: u32,
  slot: u32,
  tensor: u32,
  seed: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> maxes: array<u32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> by_row: array<u32>;
@group(0) @binding(5) var<storage, read_write> by_col: array<u32>;

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

fn quantize(e: u32, s: u32, key: u32) -> u32 {
  var v = x[e];
  if (s > 0u) {
    if (STOCHASTIC) { v = round_stochastic(v, s, key, e); } else { v = round_even(v, s); }
  }
  return u32(clamp(v, -127, 127)) & 0xffu;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let t = gid.x + gid.y * groups.x * 256u;
  let cw = (p.cols + 3u) / 4u;
  let rw = (p.rows + 3u) / 4u;
  let row_words = p.rows * cw;
  if (t >= row_words + p.cols * rw) { return; }
  let s = quant_shift(maxes[p.slot]);
  var key = 0u;
  if (STOCHASTIC) { key = rng_key(p.seed, state[0], p.tensor); }
  var packed = 0u;
  if (t < row_words) {
    let r = t / cw;
    let c0 = (t % cw) * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (c0 + i < p.cols) { packed |= quantize(r * p.cols + c0 + i, s, key) << (8u * i); }
    }
    by_row[t] = packed;
  } else {
    let u = t - row_words;
    let c = u / rw;
    let r0 = (u % rw) * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (r0 + i < p.rows) { packed |= quantize((r0 + i) * p.cols + c, s, key) << (8u * i); }
    }
    by_col[u] = packed;
  }
}
