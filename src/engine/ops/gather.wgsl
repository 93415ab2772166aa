// The first layer's operand for a batch: x8[b][f] = pixel(order[b], f) >> 1 (shift 9, value ≈ p/256),
// packed int8, plus the batch labels y[b]. Pixels and labels are the whole dataset, u8 packed four to
// a word, uploaded once; `order` holds dataset indices (the plan's batches, or the validation set).
// Row b's dataset index is order[base + state[1] · rows + b] when PER_STEP (training: state[1] is the
// step within the uploaded range), order[base + b] otherwise (validation).
// When WIDEN (a residual first layer), also writes the input as Q16 i32: x_wide = (pixel >> 1) << 9.
// Dispatch: ceil(max(rows · features, 4 · rows) / 4 / 256) workgroups.

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
@group(0) @binding(5) var<storage, read_write> x8: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;
@group(0) @binding(7) var<storage, read_write> x_wide: array<i32>;

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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let word = gid.x + gid.y * groups.x * 256u;
  if (word < p.rows) { y[word] = byte_of(example(word), true); }
  let n = p.rows * p.features;
  let e0 = word * 4u;
  if (e0 >= n) { return; }
  var packed = 0u;
  for (var t = 0u; t < 4u; t++) {
    let e = e0 + t;
    if (e >= n) { break; }
    let b = e / p.features;
    let pixel = byte_of(example(b) * p.features + e % p.features, false);
    packed = insertBits(packed, pixel >> 1u, t * 8u, 8u);
    if (WIDEN) { x_wide[e] = i32(pixel >> 1u) << 9u; }
  }
  x8[word] = packed;
}
