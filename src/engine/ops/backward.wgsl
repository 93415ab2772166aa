// Backward epilogue into a layer's input (twins: matmul.ts rescaleAll, activation.ts):
//   gh = rescale(acc, se + sw − 24) (+ gh_res when RESIDUAL)     (acc = e8 · w8ᵀ, Q24)
//   gz = gh ⊙ act'(z)                                            (z: the previous layer's Q16 pre-activation)
// gh itself is kept (gh_out) for a residual connection further down, and max |gz| is folded into
// maxes[gz_slot] for the previous layer's stochastic quantisation.
// Needs fixed.wgsl and activation.wgsl. Dispatch: ceil(rows · n / 256) workgroups (2-D when large).

override ACT: u32 = 0u;
override RESIDUAL: bool = false;

struct Params {
  count: u32,
  e_slot: u32,
  w_slot: u32,
  gz_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> acc: array<i32>;
@group(0) @binding(2) var<storage, read> z: array<i32>;
@group(0) @binding(3) var<storage, read> gh_res: array<i32>;
@group(0) @binding(4) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> gh_out: array<i32>;
@group(0) @binding(6) var<storage, read_write> gz: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  let shift = i32(quant_shift(atomicLoad(&maxes[p.e_slot]))) + i32(quant_shift(atomicLoad(&maxes[p.w_slot]))) - 24;
  var m = 0u;
  if (i < p.count) {
    var gh = rescale(acc[i], shift);
    if (RESIDUAL) { gh += gh_res[i]; }
    gh_out[i] = gh;
    let g = activate_backward(ACT, z[i], gh);
    gz[i] = g;
    m = abs_u32(g);
  }
  if (m > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], m); }
}
