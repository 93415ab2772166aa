// A conv layer's weight and bias gradients in one dispatch (twin: conv-weight-grad.ts), an implicit
// GEMM ADDED into acc (atomicAdd wraps like i32 addition, so the order of the parts is free):
//   acc[k][n]    += Σ_m P8[m][k] · e8[m][n]   P8: the im2col patch matrix of x at the RNE shift sx,
//                                             gathered and quantised on the fly (conv-patch.wgsl)
//   acc[K·N + n] += Σ_m gz[m][n]              (the bias gradient; sgd's ACCUMULATED mode reads and zeroes both)
// sx = quant_shift(maxes[x_slot]), or fixed_shift when x_slot = NONE. e8: N lines of ⌈M/4⌉ words
// (the 'cols' k-packed layout: along m).
//
// GEMM rows are k = (c, ky, kx), columns n, the reduction m = (b, oy, ox) in words of 4 rows, cut
// into splits of split_words words; each workgroup does one split of one 4·WG_M × 4·NB·WG_N tile
// (or, the last tile of a split, the bias sums) and adds its part atomically. 64 threads, each 4 k
// × 4·NB n (NB ≤ 4): WG_N along n, WG_M along k, and 64 / (WG_M·WG_N) groups splitting the
// workgroup's words between them. TILED:
// per chunk of BK words the workgroup stages the patch words of its k rows and the error words of
// its columns in workgroup memory; otherwise each thread gathers its own (no barrier). The same bits.
// Needs dot4, fixed.wgsl, conv-gemm.wgsl, conv-patch.wgsl.
// Dispatch: (⌈K / 4·WG_M⌉ · ⌈N / 4·NB·WG_N⌉ + 1) · ⌈⌈M/4⌉ / split_words⌉ workgroups (2-D past 65535).

override CHANNELS_LAST: bool = true;
override WG_N: u32 = 1u;
override WG_M: u32 = 16u;
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
  fixed_shift: u32,
  split_words: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> maxes: array<u32>;
@group(0) @binding(3) var<storage, read> e8: array<u32>;
@group(0) @binding(4) var<storage, read> gz: array<i32>;
@group(0) @binding(5) var<storage, read_write> acc: array<atomic<i32>>;

var<workgroup> tile_rows: array<vec4<i32>, 4u * BK>;
var<workgroup> tile_cols: array<vec4<i32>, 4u * WG_M>;
var<workgroup> tile_a: array<u32, 4u * WG_M * BK>;
var<workgroup> tile_b: array<u32, 4u * NB * WG_N * BK>;

fn as_vec(q: PatchCol) -> vec4<i32> {
  return vec4<i32>(i32(q.c), i32(q.ky), i32(q.kx), q.off);
}

fn as_col(v: vec4<i32>) -> PatchCol {
  return PatchCol(u32(v.x), u32(v.y), u32(v.z), v.w);
}

fn error_words(lines: vec4<u32>, w: u32) -> vec4<u32> {
  return vec4<u32>(e8[lines.x + w], e8[lines.y + w], e8[lines.z + w], e8[lines.w + w]);
}

// Words [w_begin, w_end) of one thread: its k rows' patch words and its columns' error words.
fn block_direct(k0: u32, n0: u32, w_begin: u32, w_end: u32, rne: Rne, mw: u32) -> Blocks {
  var acc: Blocks;
  if (w_begin >= w_end) { return acc; }
  let q0 = patch_col(k0);
  let q1 = next_patch_col(q0);
  let q2 = next_patch_col(q1);
  let q3 = next_patch_col(q2);
  let l0 = column_lines(n0, p.n, mw);
  let l1 = column_lines(n0 + 4u, p.n, mw);
  let l2 = column_lines(n0 + 8u, p.n, mw);
  let l3 = column_lines(n0 + 12u, p.n, mw);
  let rows = p.batch * p.out_h * p.out_w;
  let pad = i32(p.kernel / 2u);
  let st = image_strides();
  let hw = p.out_h * p.out_w;
  // (b, oy, ox) of row 4·w_begin, then counted forward.
  var m = 4u * w_begin;
  var b = m / hw;
  var oy = (m - b * hw) / p.out_w;
  var ox = m - b * hw - oy * p.out_w;
  for (var w = w_begin; w < w_end; w++) {
    var a = vec4<u32>(0u);
    for (var t = 0u; t < 4u; t++) {
      if (m < rows) {
        let iy = i32(oy * p.stride) - pad;
        let ix = i32(ox * p.stride) - pad;
        let row = vec4<i32>(i32(b) * st.x + iy * st.z + ix * st.w, iy, ix, 1);
        let sh = 8u * t;
        a.x |= patch_byte(row, q0, rne) << sh;
        a.y |= patch_byte(row, q1, rne) << sh;
        a.z |= patch_byte(row, q2, rne) << sh;
        a.w |= patch_byte(row, q3, rne) << sh;
      }
      m += 1u;
      ox += 1u;
      if (ox == p.out_w) {
        ox = 0u;
        oy += 1u;
        if (oy == p.out_h) {
          oy = 0u;
          b += 1u;
        }
      }
    }
    mac16(&acc.b0, a, error_words(l0, w));
    if (NB > 1u) { mac16(&acc.b1, a, error_words(l1, w)); }
    if (NB > 2u) { mac16(&acc.b2, a, error_words(l2, w)); }
    if (NB > 3u) { mac16(&acc.b3, a, error_words(l3, w)); }
  }
  return acc;
}

fn tile_words(base: u32, t: u32) -> vec4<u32> {
  return vec4<u32>(tile_b[base * BK + t], tile_b[(base + 1u) * BK + t], tile_b[(base + 2u) * BK + t], tile_b[(base + 3u) * BK + t]);
}

fn block_tiled(li: u32, k_base: u32, n_base: u32, w_begin: u32, w_end: u32, rne: Rne, mw: u32) -> Blocks {
  var acc: Blocks;
  let groups_ = 64u / (WG_M * WG_N);
  let group = li / (WG_M * WG_N);
  let kr = 4u * ((li / WG_N) % WG_M);
  let nb = 4u * NB * (li % WG_N);
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  for (var i = li; i < bm; i += 64u) { tile_cols[i] = as_vec(patch_col(k_base + i)); }
  for (var w0 = w_begin; w0 < w_end; w0 += BK) {
    for (var i = li; i < 4u * BK; i += 64u) {
      var row = NO_ROW;
      if (w0 + i / 4u < w_end) { row = patch_row(4u * w0 + i); }
      tile_rows[i] = row;
    }
    workgroupBarrier();
    for (var i = li; i < bm * BK; i += 64u) {
      let r = i / BK;
      let t = i - r * BK;
      let q = as_col(tile_cols[r]);
      var word = 0u;
      for (var u = 0u; u < 4u; u++) { word |= patch_byte(tile_rows[4u * t + u], q, rne) << (8u * u); }
      tile_a[i] = word;
    }
    for (var i = li; i < bn * BK; i += 64u) {
      let j = i / BK;
      let w = w0 + i - j * BK;
      var v = 0u;
      if (n_base + j < p.n && w < w_end) { v = e8[(n_base + j) * mw + w]; }
      tile_b[i] = v;
    }
    workgroupBarrier();
    for (var t = group; t < BK; t += groups_) {
      let a = vec4<u32>(tile_a[kr * BK + t], tile_a[(kr + 1u) * BK + t], tile_a[(kr + 2u) * BK + t], tile_a[(kr + 3u) * BK + t]);
      mac16(&acc.b0, a, tile_words(nb, t));
      if (NB > 1u) { mac16(&acc.b1, a, tile_words(nb + 4u, t)); }
      if (NB > 2u) { mac16(&acc.b2, a, tile_words(nb + 8u, t)); }
      if (NB > 3u) { mac16(&acc.b3, a, tile_words(nb + 12u, t)); }
    }
    workgroupBarrier();
  }
  return acc;
}

// The bias part of one split: Σ gz[m][n] over its rows, per n.
fn bias_sums(li: u32, w_begin: u32, w_end: u32, k: u32) {
  let rows = p.batch * p.out_h * p.out_w;
  let m_end = min(rows, 4u * w_end);
  for (var n = li; n < p.n; n += 64u) {
    var sum = 0;
    for (var m = 4u * w_begin; m < m_end; m++) { sum += gz[m * p.n + n]; }
    if (sum != 0) { atomicAdd(&acc[k * p.n + n], sum); }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let k = p.channels * p.kernel * p.kernel;
  let rows = p.batch * p.out_h * p.out_w;
  let mw = (rows + 3u) / 4u;
  let bm = 4u * WG_M;
  let bn = 4u * NB * WG_N;
  let n_tiles = (p.n + bn - 1u) / bn;
  let tiles = ((k + bm - 1u) / bm) * n_tiles + 1u;
  let splits = (mw + p.split_words - 1u) / p.split_words;
  let g = group_index(wg, groups);
  if (g >= tiles * splits) { return; }
  let tile = g % tiles;
  let w_begin = (g / tiles) * p.split_words;
  let w_end = min(mw, w_begin + p.split_words);
  if (tile == tiles - 1u) {
    bias_sums(li, w_begin, w_end, k);
    return;
  }
  var s = p.fixed_shift;
  if (p.x_slot != NONE) { s = quant_shift(maxes[p.x_slot]); }
  let k_base = (tile / n_tiles) * bm;
  let n_base = (tile % n_tiles) * bn;
  let k0 = k_base + 4u * ((li / WG_N) % WG_M);
  let n0 = n_base + 4u * NB * (li % WG_N);
  var part: Blocks;
  if (TILED) {
    part = block_tiled(li, k_base, n_base, w_begin, w_end, rne_of(s), mw);
  } else {
    // This thread's group takes a contiguous share of the split's words.
    let groups_ = 64u / (WG_M * WG_N);
    let share = (w_end - w_begin + groups_ - 1u) / groups_;
    let first = min(w_end, w_begin + (li / (WG_M * WG_N)) * share);
    part = block_direct(k0, n0, first, min(w_end, first + share), rne_of(s), mw);
  }
  for (var r = 0u; r < 4u; r++) {
    if (k0 + r >= k) { break; }
    for (var j = 0u; j < 4u * NB; j++) {
      if (n0 + j >= p.n) { break; }
      let v = block_value(&part, j / 4u, 4u * r + j % 4u);
      if (v != 0) { atomicAdd(&acc[(k0 + r) * p.n + n0 + j], v); }
    }
  }
}
