// The first layer's operand for a batch: x8[b][f] = pixel(order[b], f) >> 1 (shift 9, value ≈ p/256),
// plus the batch labels y[b]. Pixels and labels are the whole dataset, u8 packed four to a word,
// uploaded once; `order` holds dataset indices (the plan's batches, or the validation set).
// Row b's dataset index is order[base + state[1] · rows + b] when PER_STEP (training: state[1] is the
// step within the uploaded range), order[base + b] otherwise (validation).
// x8 is written in both k-packed layouts of matmul.wgsl (see quantize.wgsl): by_row [rows][⌈f/4⌉]
// and by_col [features][⌈rows/4⌉]. When WIDEN (a residual first layer), also writes the input as
// Q16 i32: x_wide = (pixel >> 1) << 9.
// Dispatch: ceil(max(rows · ⌈f/4⌉ + f · ⌈rows/4⌉, rows · f) / 256) workgroups (2-D when large).

override PER_STEP: bool = true;
override WIDEN: bool = false;

struct Params {
  rows: u32,
  features: u32,
  base: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> by_row: array<u32>;
@group(0) @binding(6) var<storage, read_write> by_col: array<u32>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;
@group(0) @binding(8) var<storage, read_write> x_wide: array<i32>;

fn byte_of(e: u32, is_label: bool) -> u32 {
  var w: u32;
  if (is_label) { w = labels[e >> 2u]; } else { w = pixels[e >> 2u]; }
  return extractBits(w, (e & 3u) * 8u, 8u);
}

fn example(b: u32) -> u32 {
  var first = p.base;
  if (PER_STEP) { first += state[1] * p.rows; }
  return order[first + b];
}

fn operand(b: u32, f: u32) -> u32 {
  return byte_of(example(b) * p.features + f, false) >> 1u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let t = gid.x + gid.y * groups.x * 256u;
  let fw = (p.features + 3u) / 4u;
  let rw = (p.rows + 3u) / 4u;
  let row_words = p.rows * fw;
  if (t < p.rows) { y[t] = byte_of(example(t), true); }
  if (WIDEN && t < p.rows * p.features) { x_wide[t] = i32(operand(t / p.features, t % p.features)) << 9u; }
  var packed = 0u;
  if (t < row_words) {
    let b = t / fw;
    let f0 = (t % fw) * 4u;
    if ((p.features & 3u) == 0u) {
      // Whole words of one example: halve the four bytes at once (no carry crosses a byte).
      by_row[t] = (pixels[(example(b) * p.features + f0) >> 2u] >> 1u) & 0x7f7f7f7fu;
      return;
    }
    for (var i = 0u; i < 4u; i++) {
      if (f0 + i < p.features) { packed |= operand(b, f0 + i) << (8u * i); }
    }
    by_row[t] = packed;
  } else if (t < row_words + p.features * rw) {
    let u = t - row_words;
    let f = u / rw;
    let b0 = (u % rw) * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (b0 + i < p.rows) { packed |= operand(b0 + i, f) << (8u * i); }
    }
    by_col[u] = packed;
  }
}
