// A conv layer's forward pass in one dispatch (twin: conv-forward.ts), an implicit GEMM:
//   acc[m][n] = Σ_k P8[m][k] · w8[k][n]       P8: the im2col patch matrix of x at the RNE shift
//                                              sx, gathered and quantised on the fly (conv-patch.wgsl)
//   z = rescale(acc, sx + sw − 24) + shr_round(bias[n], 8);  h = act(z) (+ h_in)  (forward.wgsl's epilogue)
// max |h| is folded into maxes[out_slot] (NONE: skip). Rows m = (b, oy, ox), columns n: z and h
// are [M][N] (hwc). sx = quant_shift(maxes[x_slot]), or fixed_shift when x_slot = NONE (the pixel
// operand); sw = quant_shift(maxes[w_slot]). w8: N lines of ⌈K/4⌉ words (the 'cols' k-packed layout).
//
// 64 threads per workgroup, each 4 rows × 4·NB channels in registers (NB ≤ 4 blocks of 4): WG_N
// threads along the channels, WG_M = 64 / WG_N along the rows. TILED: per chunk of BK words along k
// the workgroup stages its rows' patch words and its channels' weight words in workgroup memory
// (each patch word then serves WG_N threads, each weight word WG_M); otherwise each thread gathers
// its own, with no barrier (SwiftShader pays a fiber switch per barrier), each patch word serving
// its 4·NB channels. Integer sums: the same bits either way.
// Needs dot4, fixed.wgsl, activation.wgsl, conv-gemm.wgsl, conv-patch.wgsl.
// Dispatch: ceil(N / (4·NB·WG_N)) · ceil(M / (4·WG_M)) workgroups, WG_M = 64 / WG_N (2-D past 65535).

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
  x_slot: u32,
  w_slot: u32,
  out_slot: u32,
  fixed_shift: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> w8: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
@group(0) @binding(4) var<storage, read> h_in: array<i32>;
@group(0) @binding(5) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> z: array<i32>;
@group(0) @binding(7) var<storage, read_write> h: array<i32>;

var<workgroup> tile_rows: array<vec4<i32>, 4u * WG_M>;
var<workgroup> tile_a: array<u32, 4u * WG_M * BK>;
var<workgroup> tile_b: array<u32, 4u * NB * WG_N * BK>;

fn operand_shift(slot: u32) -> u32 {
  if (slot == NONE) { return p.fixed_shift; }
  return quant_shift(atomicLoad(&maxes[slot]));
}

fn weight_words(lines: vec4<u32>, w: u32) -> vec4<u32> {
  return vec4<u32>(w8[lines.x + w], w8[lines.y + w], w8[lines.z + w], w8[lines.w + w]);
}

// Each thread its own patch and weight words.
fn block_direct(m0: u32, n0: u32, rne: Rne, kw: u32) -> Blocks {
  var acc: Blocks;
  let r0 = patch_row(m0);
  let r1 = patch_row(m0 + 1u);
  let r2 = patch_row(m0 + 2u);
  let r3 = patch_row(m0 + 3u);
  let l0 = column_lines(n0, p.n, kw);
  let l1 = column_lines(n0 + 4u, p.n, kw);
  let l2 = column_lines(n0 + 8u, p.n, kw);
  let l3 = column_lines(n0 + 12u, p.n, kw);
  var q = PatchCol(0u, 0u, 0u, 0);
  for (var w = 0u; w < kw; w++) {
    var a = vec4<u32>(0u);
    for (var t = 0u; t < 4u; t++) {
      let sh = 8u * t;
      a.x |= patch_byte(r0, q, rne) << sh;
      a.y |= patch_byte(r1, q, rne) << sh;
      a.z |= patch_byte(r2, q, rne) << sh;
      a.w |= patch_byte(r3, q, rne) << sh;
      q = next_patch_col(q);
    }
    mac16(&acc.b0, a, weight_words(l0, w));
    if (NB > 1u) { mac16(&acc.b1, a, weight_words(l1, w)); }
    if (NB > 2u) { mac16(&acc.b2, a, weight_words(l2, w)); }
    if (NB > 3u) { mac16(&acc.b3, a, weight_words(l3, w)); }
  }
  return acc;
}

fn tile_words(base: u32, t: u32) -> vec4<u32> {
  return vec4<u32>(tile_b[base * BK + t], tile_b[(base + 1u) * BK + t], tile_b[(base + 2u) * BK + t], tile_b[(base + 3u) * BK + t]);
}

// The workgroup stages the words of its rows and channels, BK words at a time.
fn block_tiled(li: u32, row0: u32, col0: u32, rne: Rne, kw: u32) -> Blocks {
  var acc: Blocks;
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  let mg = 4u * (li / WG_N);
  let nb = 4u * NB * (li % WG_N);
  for (var i = li; i < bm; i += 64u) { tile_rows[i] = patch_row(row0 + i); }
  workgroupBarrier();
  for (var w0 = 0u; w0 < kw; w0 += BK) {
    for (var t = 0u; t < BK; t++) {
      // Words past ⌈K/4⌉ start past the last channel: zero bytes.
      let q = patch_col(4u * (w0 + t));
      for (var i = li; i < bm; i += 64u) { tile_a[i * BK + t] = patch_word_along_k(tile_rows[i], q, rne); }
    }
    for (var i = li; i < bn * BK; i += 64u) {
      let j = i / BK;
      let w = w0 + i - j * BK;
      var v = 0u;
      if (col0 + j < p.n && w < kw) { v = w8[(col0 + j) * kw + w]; }
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
  return acc;
}

@compute @workgroup_size(64)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let rows = p.batch * p.out_h * p.out_w;
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  let col_tiles = (p.n + bn - 1u) / bn;
  let g = group_index(wg, groups);
  if (g >= col_tiles * ((rows + bm - 1u) / bm)) { return; }
  let row0 = (g / col_tiles) * bm;
  let col0 = (g % col_tiles) * bn;
  let m0 = row0 + 4u * (li / WG_N);
  let n0 = col0 + 4u * NB * (li % WG_N);
  let kw = (p.channels * p.kernel * p.kernel + 3u) / 4u;
  let s = operand_shift(p.x_slot);
  var acc: Blocks;
  if (TILED) { acc = block_tiled(li, row0, col0, rne_of(s), kw); } else { acc = block_direct(m0, n0, rne_of(s), kw); }

  let shift = i32(s + operand_shift(p.w_slot)) - 24;
  var mx = 0u;
  for (var r = 0u; r < 4u; r++) {
    let m = m0 + r;
    if (m >= rows) { break; }
    for (var j = 0u; j < 4u * NB; j++) {
      let n = n0 + j;
      if (n >= p.n) { break; }
      let i = m * p.n + n;
      let zi = rescale(block_value(&acc, j / 4u, 4u * r + j % 4u), shift) + shr_round(bias[n], 8);
      z[i] = zi;
      var hi = activate(ACT, zi);
      if (RESIDUAL) { hi += h_in[i]; }
      h[i] = hi;
      mx = max(mx, abs_u32(hi));
    }
  }
  if (p.out_slot == NONE) { return; }
  if (mx > atomicLoad(&maxes[p.out_slot])) { atomicMax(&maxes[p.out_slot], mx); }
}
