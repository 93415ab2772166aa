// im2col (twin: im2col.ts): the patch matrix of a 2-D convolution as k-packed int8 operands.
// Patch row m = (b, oy, ox), column k = (c·kernel + ky)·kernel + kx holds the input element
// (b, c, oy·stride + ky − pad, ox·stride + kx − pad), pad = ⌊kernel/2⌋, rounded half to even at the
// layer input's shift (0 outside the image). The input's RNE quantisation is fused in: x is the i32
// activation tensor, s = quant_shift(maxes[x_slot]), or fixed_shift when x_slot = NONE.
//   CHANNELS_LAST: x is [B][H][W][C] (the conv matmul's own output layout), else [B][C][H][W].
// Writes both layouts matmul.wgsl reads (see quantize.wgsl): by_row, M lines of ⌈K/4⌉ words (A of
// patches · w8) and by_col, K lines of ⌈M/4⌉ words (A of patchesᵀ · e8).
// One thread per output word, no barriers: neighbouring threads read overlapping neighbourhoods,
// which the caches serve (every input element is read k² times per layout).
// Needs fixed.wgsl. Dispatch: ceil((M·⌈K/4⌉ + K·⌈M/4⌉) / 256) workgroups (2-D when large).

override CHANNELS_LAST: bool = true;
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
  x_slot: u32,
  fixed_shift: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> maxes: array<u32>;
@group(0) @binding(3) var<storage, read_write> by_row: array<u32>;
@group(0) @binding(4) var<storage, read_write> by_col: array<u32>;

fn round_even_i8(v: i32, s: u32) -> i32 {
  var q = v;
  if (s > 0u) {
    let fl = v >> s;
    let r = u32(v) & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    q = fl + select(0, 1, r > half || (r == half && (fl & 1) == 1));
  }
  return clamp(q, -127, 127);
}

// The operand byte of patch element (m, k).
fn patch_byte(m: u32, k: u32, s: u32) -> u32 {
  let kk = p.kernel * p.kernel;
  let c = k / kk;
  let r = k - c * kk;
  let ky = r / p.kernel;
  let kx = r - ky * p.kernel;
  let hw = p.out_h * p.out_w;
  let b = m / hw;
  let o = m - b * hw;
  let oy = o / p.out_w;
  let ox = o - oy * p.out_w;
  let pad = p.kernel / 2u;
  // Padded coordinates (≥ 0); the image occupies [pad, pad + size).
  let py = oy * p.stride + ky;
  let px = ox * p.stride + kx;
  if (py < pad || px < pad || py - pad >= p.height || px - pad >= p.width) { return 0u; }
  let y = py - pad;
  let xx = px - pad;
  var i: u32;
  if (CHANNELS_LAST) {
    i = ((b * p.height + y) * p.width + xx) * p.channels + c;
  } else {
    i = ((b * p.channels + c) * p.height + y) * p.width + xx;
  }
  return u32(round_even_i8(x[i], s)) & 0xffu;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let t = gid.x + gid.y * groups.x * 256u;
  let rows = p.batch * p.out_h * p.out_w;
  let cols = p.channels * p.kernel * p.kernel;
  let cw = (cols + 3u) / 4u;
  let rw = (rows + 3u) / 4u;
  let row_words = rows * cw;
  if (t >= row_words + cols * rw) { return; }
  var s = p.fixed_shift;
  if (p.x_slot != NONE) { s = quant_shift(maxes[p.x_slot]); }
  var packed = 0u;
  if (t < row_words) {
    let m = t / cw;
    let k0 = (t - m * cw) * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (k0 + i < cols) { packed |= patch_byte(m, k0 + i, s) << (8u * i); }
    }
    by_row[t] = packed;
  } else {
    let u = t - row_words;
    let k = u / rw;
    let m0 = (u - k * rw) * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (m0 + i < rows) { packed |= patch_byte(m0 + i, k, s) << (8u * i); }
    }
    by_col[u] = packed;
  }
}
