// col2im (twin: col2im.ts): the gradient at a conv's input from the gradient at its patch matrix,
// dP[M][K] = e8 · w8ᵀ (exact i32, row-major, M = B·Ho·Wo rows (b, oy, ox), K = C·k·k columns
// (c, ky, kx)): dx = col2im_at(i) per input element (col2im-gather.wgsl), the raw exact sum.
// col2im-backward.wgsl fuses the backward epilogue (rescale, residual, act′, max) into the same pass.
//   CHANNELS_LAST: dX is [B][H][W][C], else [B][C][H][W] (the layout of the layer's input).
// Needs col2im-gather.wgsl. Dispatch: ceil(B·C·H·W / 256) workgroups (2-D when large).

override CHANNELS_LAST: bool = true;

struct Params {
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  kernel: u32,
  stride: u32,
  out_h: u32,
  out_w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> d_patches: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.batch * p.channels * p.height * p.width) { return; }
  dx[i] = col2im_at(i);
}
