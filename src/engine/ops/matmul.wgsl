// Int8 matmul with exact i32 accumulation: C[m×n] = A[m×k] · B[k×n].
//
// Operands are int8 packed four to a u32 word by flat element index (element e is byte e & 3 of
// word e >> 2). Each operand is addressed through strides, so one kernel serves x·W, xᵀ·e and e·Wᵀ:
// A(i, kk) is element i·a_row + kk·a_k, B(kk, j) is element kk·b_k + j·b_col.
//
// The tile loaders repack 4 consecutive k values of a row of A / a column of B into one u32, so the
// inner loop is a 4-wide int8 dot product: `dot4i8` comes from dot4-packed.wgsl (dot4I8Packed) or
// dot4-plain.wgsl (sign-extend and multiply). Integer addition is associative, so the tiling and the
// order of the sum cannot change a single bit of C.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_row: u32,
  a_k: u32,
  b_k: u32,
  b_col: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

const TILE = 32u;       // outputs per workgroup side (16 threads × 2)
const KW = 8u;          // packed words per tile row: 32 k values

var<workgroup> tile_a: array<u32, 256>;  // [TILE rows][KW words]
var<workgroup> tile_b: array<u32, 256>;  // [TILE cols][KW words]

fn byte_at(src_is_a: bool, e: u32) -> u32 {
  var w: u32;
  if (src_is_a) { w = a[e >> 2u]; } else { w = b[e >> 2u]; }
  return extractBits(w, (e & 3u) * 8u, 8u);
}

// Four k-consecutive int8 values of operand row/column `line`, starting at k = k0, zero past the end.
fn load_word(src_is_a: bool, line: u32, k0: u32) -> u32 {
  var line_stride: u32;
  var k_stride: u32;
  var lines: u32;
  if (src_is_a) { line_stride = p.a_row; k_stride = p.a_k; lines = p.m; }
  else { line_stride = p.b_col; k_stride = p.b_k; lines = p.n; }
  if (line >= lines) { return 0u; }
  let base = line * line_stride + k0 * k_stride;
  if (k_stride == 1u && (base & 3u) == 0u && k0 + 3u < p.k) {
    if (src_is_a) { return a[base >> 2u]; }
    return b[base >> 2u];
  }
  var word = 0u;
  for (var t = 0u; t < 4u; t++) {
    if (k0 + t < p.k) {
      word = insertBits(word, byte_at(src_is_a, base + t * k_stride), t * 8u, 8u);
    }
  }
  return word;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  var acc = array<i32, 4>(0, 0, 0, 0);
  let k_tiles = (p.k + KW * 4u - 1u) / (KW * 4u);
  for (var kt = 0u; kt < k_tiles; kt++) {
    let kbase = kt * KW * 4u;
    // 256 threads load 256 words of A and 256 of B: one each.
    let line = li / KW;
    let word = li % KW;
    tile_a[li] = load_word(true, row0 + line, kbase + word * 4u);
    tile_b[li] = load_word(false, col0 + line, kbase + word * 4u);
    workgroupBarrier();
    for (var w = 0u; w < KW; w++) {
      let a0 = tile_a[(lid.y * 2u) * KW + w];
      let a1 = tile_a[(lid.y * 2u + 1u) * KW + w];
      let b0 = tile_b[(lid.x * 2u) * KW + w];
      let b1 = tile_b[(lid.x * 2u + 1u) * KW + w];
      acc[0] += dot4i8(a0, b0);
      acc[1] += dot4i8(a0, b1);
      acc[2] += dot4i8(a1, b0);
      acc[3] += dot4i8(a1, b1);
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < 4u; t++) {
    let i = row0 + lid.y * 2u + t / 2u;
    let j = col0 + lid.x * 2u + t % 2u;
    if (i < p.m && j < p.n) { c[i * p.n + j] = acc[t]; }
  }
}
