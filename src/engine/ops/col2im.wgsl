// col2im (twin: col2im.ts): the gradient at a conv's input from the gradient at its patch matrix,
// dP[M][K] = e8 · w8ᵀ (exact i32, row-major, M = B·Ho·Wo rows (b, oy, ox), K = C·k·k columns
// (c, ky, kx)). One thread per input element (b, c, y, x) gathers the patch entries that were copies
// of it: oy·stride + ky − pad = y, ox·stride + kx − pad = x (at most ⌈k/s⌉² of them), so the sum
// needs no atomics and is the same integer in any order (wrapping i32).
//   CHANNELS_LAST: dX is [B][H][W][C], else [B][C][H][W] (the layout of the layer's input).
// The dense backward epilogue (backward.wgsl: rescale, residual, act', max) then runs on dX.
// Dispatch: ceil(B·C·H·W / 256) workgroups (2-D when large).

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
  var b: u32;
  var c: u32;
  var y: u32;
  var x: u32;
  if (CHANNELS_LAST) {
    c = i % p.channels;
    let pix = i / p.channels;
    x = pix % p.width;
    y = (pix / p.width) % p.height;
    b = pix / (p.width * p.height);
  } else {
    x = i % p.width;
    y = (i / p.width) % p.height;
    c = (i / (p.width * p.height)) % p.channels;
    b = i / (p.width * p.height * p.channels);
  }
  let k = p.kernel;
  let pad = k / 2u;
  let cols = p.channels * k * k;
  var sum = 0;
  for (var ky = 0u; ky < k; ky++) {
    // oy·stride = y + pad − ky must be ≥ 0, a multiple of stride and < out_h·stride.
    let ty = y + pad;
    if (ty < ky) { break; }
    let sy = ty - ky;
    if (sy % p.stride != 0u || sy / p.stride >= p.out_h) { continue; }
    let row_y = (b * p.out_h + sy / p.stride) * p.out_w;
    for (var kx = 0u; kx < k; kx++) {
      let tx = x + pad;
      if (tx < kx) { break; }
      let sx = tx - kx;
      if (sx % p.stride != 0u || sx / p.stride >= p.out_w) { continue; }
      sum += d_patches[(row_y + sx / p.stride) * cols + (c * k + ky) * k + kx];
    }
  }
  dx[i] = sum;
}
