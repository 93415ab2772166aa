// Gradient and SGD update of one layer (twins: matmul.ts rescaleAll/columnSums, sgd.ts):
//   i < K·N (weights): g = rescale(acc[i], sx + se − 16)   (acc = x8ᵀ · e8, Q24)
//   else (bias j):     g = Σ_b gz[b][j]                     (wrapping)
//   ACCUMULATED (a conv-weight-grad op summed both into acc: [K][N], then [N]): bias j: g = acc[K·N + j],
//   and every acc element read is zeroed for the next step's sums; gz is not read.
//   g' = g + mul_shr(w, weight_decay_q24, 24); v = mul_shr(v, momentum_q16, 16) + g'
//   w  = w − mul_shr(v, learning_rate_q16, 16)
// max |w| of the updated weights (not biases) is folded into maxes[w_next_slot]: the next step's
// stochastic quantisation of W needs it, and this saves a max-abs pass over W (step.wgsl moves it
// into the current-step slot).
// Needs fixed.wgsl. Dispatch: ceil((K·N + N) / 256) workgroups (2-D when large).

override ACCUMULATED: bool = false;
const NONE: u32 = 0xffffffffu;

struct Params {
  k: u32,
  n: u32,
  rows: u32,
  x_slot: u32,
  e_slot: u32,
  learning_rate_q16: i32,
  momentum_q16: i32,
  weight_decay_q24: i32,
  w_next_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<i32>;
@group(0) @binding(2) var<storage, read> gz: array<i32>;
@group(0) @binding(3) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> w: array<i32>;
@group(0) @binding(5) var<storage, read_write> vw: array<i32>;
@group(0) @binding(6) var<storage, read_write> bias: array<i32>;
@group(0) @binding(7) var<storage, read_write> vb: array<i32>;

fn operand_shift(slot: u32) -> i32 {
  if (slot == NONE) { return 9; }
  return i32(quant_shift(atomicLoad(&maxes[slot])));
}

fn update(w_old: i32, v_old: i32, g: i32) -> vec2<i32> {
  var gi = g;
  if (p.weight_decay_q24 != 0) { gi += mul_shr(w_old, p.weight_decay_q24, 24u); }
  let v = mul_shr(v_old, p.momentum_q16, 16u) + gi;
  return vec2<i32>(w_old - mul_shr(v, p.learning_rate_q16, 16u), v);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  let weights = p.k * p.n;
  if (i < weights) {
    let g = rescale(acc[i], operand_shift(p.x_slot) + operand_shift(p.e_slot) - 16);
    if (ACCUMULATED) { acc[i] = 0; }
    let wv = update(w[i], vw[i], g);
    w[i] = wv.x;
    vw[i] = wv.y;
    let m = abs_u32(wv.x);
    if (m > atomicLoad(&maxes[p.w_next_slot])) { atomicMax(&maxes[p.w_next_slot], m); }
  } else if (i < weights + p.n) {
    let j = i - weights;
    var g = 0;
    if (ACCUMULATED) {
      g = acc[i];
      acc[i] = 0;
    } else {
      for (var b = 0u; b < p.rows; b++) { g += gz[b * p.n + j]; }
    }
    let wv = update(bias[j], vb[j], g);
    bias[j] = wv.x;
    vb[j] = wv.y;
  }
}
