// Forward epilogue of a layer (twins: matmul.ts rescaleAddBias, activation.ts):
//   z = rescale(acc, sx + sw − 24) + shr_round(bias, 8)      (Q16, wrapping add)
//   h = act(z) (+ h_in when RESIDUAL)                         (wrapping add)
// sx = quant_shift(maxes[x_slot]) (or 9, the pixel operand, when x_slot = NONE), sw likewise.
// max |h| is folded into maxes[out_slot] for the next layer's quantisation (out_slot = NONE: skip).
// Needs fixed.wgsl and activation.wgsl. Dispatch: ceil(rows · n / 256) workgroups (2-D when large).

override ACT: u32 = 0u;
override RESIDUAL: bool = false;
const NONE: u32 = 0xffffffffu;

struct Params {
  rows: u32,
  n: u32,
  x_slot: u32,
  w_slot: u32,
  out_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> acc: array<i32>;
@group(0) @binding(2) var<storage, read> bias: array<i32>;
@group(0) @binding(3) var<storage, read> h_in: array<i32>;
@group(0) @binding(4) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> z: array<i32>;
@group(0) @binding(6) var<storage, read_write> h: array<i32>;

fn operand_shift(slot: u32) -> i32 {
  if (slot == NONE) { return 9; }
  return i32(quant_shift(atomicLoad(&maxes[slot])));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  let shift = operand_shift(p.x_slot) + operand_shift(p.w_slot) - 24;
  var m = 0u;
  if (i < p.rows * p.n) {
    let zi = rescale(acc[i], shift) + shr_round(bias[i % p.n], 8);
    z[i] = zi;
    var hi = activate(ACT, zi);
    if (RESIDUAL) { hi += h_in[i]; }
    h[i] = hi;
    m = abs_u32(hi);
  }
  if (p.out_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.out_slot])) { atomicMax(&maxes[p.out_slot], m); }
}
