// A conv layer's input gradient in one pass (twin: col2im-backward.ts): col2im's gather
// (col2im-gather.wgsl) fused with the dense backward epilogue (backward.wgsl), per input element:
//   gh = rescale(col2im(dP), se + sw − 24) (+ gh_res when RESIDUAL)     (Q24, wrapping add)
//   gz = gh ⊙ act′(z)                     (z: the previous layer's Q16 pre-activation; ACT 0: gz = gh)
// gh is kept (gh_out) for a residual connection further down; max |gz| is folded into
// maxes[gz_slot] (NONE: skip). se, sw = quant_shift(maxes[e_slot]), quant_shift(maxes[w_slot]).
//   CHANNELS_LAST: all element-wise tensors [B][H][W][C], else [B][C][H][W].
// Needs fixed.wgsl, activation.wgsl and col2im-gather.wgsl.
// Dispatch: ceil(B·C·H·W / 256) workgroups (2-D when large).

override CHANNELS_LAST: bool = true;
override ACT: u32 = 0u;
override RESIDUAL: bool = false;
const NONE: u32 = 0xffffffffu;

struct Params {
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  kernel: u32,
  stride: u32,
  out_h: u32,
  out_w: u32,
  e_slot: u32,
  w_slot: u32,
  gz_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> d_patches: array<i32>;
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
  if (i < p.batch * p.channels * p.height * p.width) {
    var gh = rescale(col2im_at(i), shift);
    if (RESIDUAL) { gh += gh_res[i]; }
    gh_out[i] = gh;
    let g = activate_backward(ACT, z[i], gh);
    gz[i] = g;
    m = abs_u32(g);
  }
  if (p.gz_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], m); }
}
