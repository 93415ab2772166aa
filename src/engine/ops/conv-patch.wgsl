// Gathering the im2col patch matrix P8 of a conv input on the fly (twin: im2col.ts), for the
// implicit-GEMM kernels conv-forward and conv-weight-grad. Needs conv-gemm.wgsl; the including
// kernel declares `p` (as conv-gemm.wgsl says) and the binding `x` (the i32 input activations).
// P8[m][k] = round_half_even(x[b][c][oy·s + ky − pad][ox·s + kx − pad] / 2^shift) clamped to ±127,
// 0 outside the image; m = (b, oy, ox), k = (c·kernel + ky)·kernel + kx.

// The RNE rounding at one shift, its constants computed once per kernel (s = 0: no rounding, as
// mask 0 and half 1 make `up` false).
struct Rne {
  s: u32,
  mask: u32,
  half: u32,
}

fn rne_of(s: u32) -> Rne {
  if (s == 0u) { return Rne(0u, 0u, 1u); }
  return Rne(s, (1u << s) - 1u, 1u << (s - 1u));
}

fn round_even_i8(v: i32, r: Rne) -> i32 {
  let fl = v >> r.s;
  let rest = u32(v) & r.mask;
  let up = rest > r.half || (rest == r.half && (fl & 1) == 1);
  return clamp(fl + select(0, 1, up), -127, 127);
}

// A patch row m: (element index of (b, c = 0, iy0, ix0), iy0, ix0, 1) with iy0 = oy·s − pad,
// ix0 = ox·s − pad (may be negative: the index is only used when the tap is inside the image).
// A row past the last has iy0 = 2^30: every tap is outside.
const NO_ROW = vec4<i32>(0, 1 << 30, 0, 0);

fn patch_row(m: u32) -> vec4<i32> {
  let hw = p.out_h * p.out_w;
  if (m >= p.batch * hw) { return NO_ROW; }
  let b = m / hw;
  let o = m - b * hw;
  let oy = o / p.out_w;
  let ox = o - oy * p.out_w;
  let pad = i32(p.kernel / 2u);
  let iy = i32(oy * p.stride) - pad;
  let ix = i32(ox * p.stride) - pad;
  let st = image_strides();
  return vec4<i32>(i32(b) * st.x + iy * st.z + ix * st.w, iy, ix, 1);
}

// A patch column k = (c, ky, kx) and its element offset c·sc + ky·sy + kx·sx; c = channels past the end.
struct PatchCol {
  c: u32,
  ky: u32,
  kx: u32,
  off: i32,
}

fn patch_col(k: u32) -> PatchCol {
  let kk = p.kernel * p.kernel;
  let c = k / kk;
  let r = k - c * kk;
  let ky = r / p.kernel;
  let kx = r - ky * p.kernel;
  let st = image_strides();
  return PatchCol(c, ky, kx, i32(c) * st.y + i32(ky) * st.z + i32(kx) * st.w);
}

// Column k + 1, by carries (no division).
fn next_patch_col(q: PatchCol) -> PatchCol {
  let st = image_strides();
  var n = q;
  n.kx += 1u;
  n.off += st.w;
  if (n.kx == p.kernel) {
    n.kx = 0u;
    n.ky += 1u;
    n.off += st.z - i32(p.kernel) * st.w;
  }
  if (n.ky == p.kernel) {
    n.ky = 0u;
    n.c += 1u;
    n.off += st.y - i32(p.kernel) * st.z;
  }
  return n;
}

// P8[row][col] as the low byte of a u32 (negative coordinates wrap to large u32: outside).
fn patch_byte(row: vec4<i32>, q: PatchCol, r: Rne) -> u32 {
  let iy = u32(row.y + i32(q.ky));
  let ix = u32(row.z + i32(q.kx));
  if (iy >= p.height || ix >= p.width || q.c >= p.channels) { return 0u; }
  return u32(round_even_i8(x[u32(row.x + q.off)], r)) & 0xffu;
}

// Four patch bytes of one row, columns q, q + 1, q + 2, q + 3, packed (byte t = column q + t).
fn patch_word_along_k(row: vec4<i32>, q: PatchCol, r: Rne) -> u32 {
  var c = q;
  var word = 0u;
  for (var t = 0u; t < 4u; t++) {
    word |= patch_byte(row, c, r) << (8u * t);
    c = next_patch_col(c);
  }
  return word;
}
