// A conv layer's input gradient in one dispatch (twin: conv-input-grad.ts), an implicit GEMM over
// the int8 operands (a transposed convolution; the [M][K] patch gradient is never in memory):
//   dX[b, c, y, x] = Σ over the taps (ky, kx) whose output (oy, ox) = ((y + pad − ky) / s, (x + pad − kx) / s)
//                    exists, of Σ_n e8[(b, oy, ox)][n] · w8[(c, ky, kx)][n]
//   gh = rescale(dX, se + sw − 24) (+ gh_res);  gz = gh ⊙ act′(z)   (col2im-backward.wgsl's epilogue)
// gh is kept (gh_out) for a residual connection further down; max |gz| is folded into
// maxes[gz_slot] (NONE: skip). se, sw = quant_shift(maxes[e_slot]), quant_shift(maxes[w_slot]).
// e8: M lines of ⌈N/4⌉ words (rows (b, oy, ox)), w8: K lines of ⌈N/4⌉ words (rows (c, ky, kx)):
// the 'rows' k-packed layouts quantize.wgsl writes. CHANNELS_LAST: the element-wise tensors are
// [B][H][W][C], else [B][C][H][W].
//
// GEMM rows are the input pixels (b, y, x), columns the input channels c, the reduction taps ×
// words of n. 64 threads, each 4 pixels × 4·NB channels (NB ≤ 4); WG_N threads along the channels,
// WG_M = 64 / WG_N along the pixels. TILED: per tap and chunk of BK words the workgroup stages its
// pixels' error words and its channels' weight words in workgroup memory; otherwise each thread
// loads its own (no barrier). The same bits.
// Needs dot4, fixed.wgsl, activation.wgsl, conv-gemm.wgsl.
// Dispatch: ceil(C / (4·NB·WG_N)) · ceil(B·H·W / (4·WG_M)) workgroups, WG_M = 64 / WG_N (2-D past 65535).

override CHANNELS_LAST: bool = true;
override ACT: u32 = 0u;
override RESIDUAL: bool = false;
override WG_N: u32 = 1u;
override WG_M: u32 = 64u; // = 64 / WG_N
override NB: u32 = 1u;
override TILED: bool = false;
override BK: u32 = 4u;
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
  n: u32,
  e_slot: u32,
  w_slot: u32,
  gz_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> e8: array<u32>;
@group(0) @binding(2) var<storage, read> w8: array<u32>;
@group(0) @binding(3) var<storage, read> z: array<i32>;
@group(0) @binding(4) var<storage, read> gh_res: array<i32>;
@group(0) @binding(5) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> gh_out: array<i32>;
@group(0) @binding(7) var<storage, read_write> gz: array<i32>;

var<workgroup> tile_px: array<vec4<i32>, 4u * WG_M>;
var<workgroup> tile_a: array<u32, 4u * WG_M * BK>;
var<workgroup> tile_b: array<u32, 4u * NB * WG_N * BK>;

// An input pixel q = (b, y, x) as (b, y + pad, x + pad, valid).
fn pixel(q: u32) -> vec4<i32> {
  let hw = p.height * p.width;
  if (q >= p.batch * hw) { return vec4<i32>(0, 0, 0, 0); }
  let b = q / hw;
  let o = q - b * hw;
  let y = o / p.width;
  let pad = p.kernel / 2u;
  return vec4<i32>(i32(b), i32(y + pad), i32(o - y * p.width + pad), 1);
}

// The first word of e8's line for the output that reads pixel `px` through tap (ky, kx), or NONE.
fn error_line(px: vec4<i32>, ky: u32, kx: u32, nw: u32) -> u32 {
  let ty = px.y - i32(ky);
  let tx = px.z - i32(kx);
  if (px.w == 0 || ty < 0 || tx < 0) { return NONE; }
  var oy = u32(ty);
  var ox = u32(tx);
  if (p.stride == 2u) {
    if (((oy | ox) & 1u) != 0u) { return NONE; }
    oy = oy >> 1u;
    ox = ox >> 1u;
  }
  if (oy >= p.out_h || ox >= p.out_w) { return NONE; }
  return ((u32(px.x) * p.out_h + oy) * p.out_w + ox) * nw;
}

fn error_word(line: u32, w: u32) -> u32 {
  if (line == NONE) { return 0u; }
  return e8[line + w];
}

fn weight_words(lines: vec4<u32>, w: u32) -> vec4<u32> {
  return vec4<u32>(w8[lines.x + w], w8[lines.y + w], w8[lines.z + w], w8[lines.w + w]);
}

fn block_direct(q0: u32, c0: u32, nw: u32) -> Blocks {
  var acc: Blocks;
  let x0 = pixel(q0);
  let x1 = pixel(q0 + 1u);
  let x2 = pixel(q0 + 2u);
  let x3 = pixel(q0 + 3u);
  // w8's line of (c, ky, kx) starts at ((c·k² + tap)·nw): per channel a stride of k²·nw words.
  let stride = p.kernel * p.kernel * nw;
  let l0 = column_lines(c0, p.channels, stride);
  let l1 = column_lines(c0 + 4u, p.channels, stride);
  let l2 = column_lines(c0 + 8u, p.channels, stride);
  let l3 = column_lines(c0 + 12u, p.channels, stride);
  for (var ky = 0u; ky < p.kernel; ky++) {
    for (var kx = 0u; kx < p.kernel; kx++) {
      let e = vec4<u32>(error_line(x0, ky, kx, nw), error_line(x1, ky, kx, nw), error_line(x2, ky, kx, nw), error_line(x3, ky, kx, nw));
      if (all(e == vec4<u32>(NONE))) { continue; }
      let tap = (ky * p.kernel + kx) * nw;
      for (var w = 0u; w < nw; w++) {
        let a = vec4<u32>(error_word(e.x, w), error_word(e.y, w), error_word(e.z, w), error_word(e.w, w));
        mac16(&acc.b0, a, weight_words(l0, tap + w));
        if (NB > 1u) { mac16(&acc.b1, a, weight_words(l1, tap + w)); }
        if (NB > 2u) { mac16(&acc.b2, a, weight_words(l2, tap + w)); }
        if (NB > 3u) { mac16(&acc.b3, a, weight_words(l3, tap + w)); }
      }
    }
  }
  return acc;
}

fn tile_words(base: u32, t: u32) -> vec4<u32> {
  return vec4<u32>(tile_b[base * BK + t], tile_b[(base + 1u) * BK + t], tile_b[(base + 2u) * BK + t], tile_b[(base + 3u) * BK + t]);
}

fn block_tiled(li: u32, row0: u32, col0: u32, nw: u32) -> Blocks {
  var acc: Blocks;
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  let mg = 4u * (li / WG_N);
  let nb = 4u * NB * (li % WG_N);
  let kk = p.kernel * p.kernel;
  for (var i = li; i < bm; i += 64u) { tile_px[i] = pixel(row0 + i); }
  workgroupBarrier();
  for (var tap = 0u; tap < kk; tap++) {
    let ky = tap / p.kernel;
    let kx = tap - ky * p.kernel;
    for (var w0 = 0u; w0 < nw; w0 += BK) {
      for (var i = li; i < bm * BK; i += 64u) {
        let r = i / BK;
        let w = w0 + i - r * BK;
        var v = 0u;
        if (w < nw) { v = error_word(error_line(tile_px[r], ky, kx, nw), w); }
        tile_a[i] = v;
      }
      for (var i = li; i < bn * BK; i += 64u) {
        let j = i / BK;
        let w = w0 + i - j * BK;
        var v = 0u;
        if (col0 + j < p.channels && w < nw) { v = w8[((col0 + j) * kk + tap) * nw + w]; }
        tile_b[i] = v;
      }
      workgroupBarrier();
      for (var t = 0u; t < BK; t++) {
        let a = vec4<u32>(tile_a[mg * BK + t], tile_a[(mg + 1u) * BK + t], tile_a[(mg + 2u) * BK + t], tile_a[(mg + 3u) * BK + t]);
        mac16(&acc.b0, a, tile_words(nb, t));
        if (NB > 1u) { mac16(&acc.b1, a, tile_words(nb + 4u, t)); }
        if (NB > 2u) { mac16(&acc.b2, a, tile_words(nb + 8u, t)); }
        if (NB > 3u) { mac16(&acc.b3, a, tile_words(nb + 12u, t)); }
      }
      workgroupBarrier();
    }
  }
  return acc;
}

@compute @workgroup_size(64)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let hw = p.height * p.width;
  let pixels = p.batch * hw;
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  let col_tiles = (p.channels + bn - 1u) / bn;
  let g = group_index(wg, groups);
  if (g >= col_tiles * ((pixels + bm - 1u) / bm)) { return; }
  let row0 = (g / col_tiles) * bm;
  let col0 = (g % col_tiles) * bn;
  let q0 = row0 + 4u * (li / WG_N);
  let c0 = col0 + 4u * NB * (li % WG_N);
  let nw = (p.n + 3u) / 4u;
  var acc: Blocks;
  if (TILED) { acc = block_tiled(li, row0, col0, nw); } else { acc = block_direct(q0, c0, nw); }

  let shift = i32(quant_shift(atomicLoad(&maxes[p.e_slot]))) + i32(quant_shift(atomicLoad(&maxes[p.w_slot]))) - 24;
  var mx = 0u;
  for (var r = 0u; r < 4u; r++) {
    let q = q0 + r;
    if (q >= pixels) { break; }
    let b = q / hw;
    for (var j = 0u; j < 4u * NB; j++) {
      let c = c0 + j;
      if (c >= p.channels) { break; }
      var i = q * p.channels + c;
      if (!CHANNELS_LAST) { i = (b * p.channels + c) * hw + q - b * hw; }
      var gh = rescale(block_value(&acc, j / 4u, 4u * r + j % 4u), shift);
      if (RESIDUAL) { gh += gh_res[i]; }
      gh_out[i] = gh;
      let gi = activate_backward(ACT, z[i], gh);
      gz[i] = gi;
      mx = max(mx, abs_u32(gi));
    }
  }
  if (p.gz_slot == NONE) { return; }
  if (mx > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], mx); }
}
