// Integer softmax cross-entropy, one thread per row of Q16 logits (twin: softmax-xent.ts).
// Writes each row's loss (Q16) and correctness to stats[2·(first + b)], stats[2·(first + b) + 1],
// first = base + state[1] · rows when PER_STEP (training), base otherwise (validation); the CPU sums
// them exactly after read-back. When TRAIN, also writes the Q24 gradient of the batch-mean loss
//   gz[b][j] = div_round(p_j · 2^8 − (j = y ? 2^24 : 0), grad_divisor)
// and folds max |gz| into maxes[gz_slot] for its stochastic quantisation.
// Needs fixed.wgsl. Dispatch: ceil(rows / 64) workgroups.

override TRAIN: bool = true;
override PER_STEP: bool = true;

const LOG2E_Q16: i32 = 94548;
const LN2_Q16: i32 = 45426;
const FLOOR_Q16: u32 = 2097152u; // 32 · 2^16

struct Params {
  rows: u32,
  classes: u32,
  grad_divisor: i32,
  base: u32,
  gz_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<i32>;
@group(0) @binding(2) var<storage, read> y: array<u32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> gz: array<i32>;
@group(0) @binding(6) var<storage, read_write> stats: array<i32>;

// d = max(z − zmax, −32·ONE), Q16, ≤ 0; the gap is taken as u32 (exact: 0 ≤ zmax − z < 2^32).
fn clamped_gap(zmax: i32, zj: i32) -> i32 {
  return -i32(min(u32(zmax) - u32(zj), FLOOR_Q16));
}

// e = exp2_Q15(d · log2 e), recomputed in the gradient pass instead of kept per class.
fn row_exp(zmax: i32, zj: i32) -> u32 {
  return u32(exp2_q15(mul_shr(clamped_gap(zmax, zj), LOG2E_Q16, 16u)));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  var m = 0u;
  if (b < p.rows) {
    let o = b * p.classes;
    let label = y[b];
    var arg = 0u;
    for (var j = 1u; j < p.classes; j++) {
      if (logits[o + j] > logits[o + arg]) { arg = j; }
    }
    let zmax = logits[o + arg];
    var s = 0u;
    var dy = 0;
    for (var j = 0u; j < p.classes; j++) {
      if (j == label) { dy = clamped_gap(zmax, logits[o + j]); }
      s += row_exp(zmax, logits[o + j]);
    }
    let loss = mul_shr(log2_q16(s) - 15 * 65536, LN2_Q16, 16u) - dy;
    var first = p.base;
    if (PER_STEP) { first += state[1] * p.rows; }
    stats[2u * (first + b)] = loss;
    stats[2u * (first + b) + 1u] = select(0, 1, arg == label);
    if (TRAIN) {
      for (var j = 0u; j < p.classes; j++) {
        let prob = i32((row_exp(zmax, logits[o + j]) << 16u) / s); // e · 2^16 ≤ 2^31
        let g = div_round(prob * 256 - select(0, 1 << 24u, j == label), p.grad_divisor);
        gz[o + j] = g;
        m = max(m, abs_u32(g));
      }
    }
  }
  if (!TRAIN) { return; }
  if (m > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], m); }
}
