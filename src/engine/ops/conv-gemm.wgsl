// Helpers of the implicit-GEMM conv kernels (conv-forward, conv-input-grad, conv-weight-grad).
// The including kernel declares `p` (a Params struct starting batch, channels, height, width,
// kernel, stride, out_h, out_w) and the override CHANNELS_LAST; dot4i8 comes from dot4-*.wgsl.
// A thread's 4×4 block of the GEMM lives in `array<i32, 16>` (row r, column s at 4r + s).

// Element strides (batch, channel, y, x) of the conv's input in its layout, as i32.
fn image_strides() -> vec4<i32> {
  let plane = i32(p.height * p.width);
  let sb = i32(p.channels) * plane;
  if (CHANNELS_LAST) { return vec4<i32>(sb, 1, i32(p.width * p.channels), i32(p.channels)); }
  return vec4<i32>(sb, plane, i32(p.width), 1);
}

// acc[4r + s] += dot4i8(a[r], b[s]): 16 four-wide int8 dot products, exact in i32.
fn mac16(acc: ptr<function, array<i32, 16>>, a: vec4<u32>, b: vec4<u32>) {
  (*acc)[0] += dot4i8(a.x, b.x);
  (*acc)[1] += dot4i8(a.x, b.y);
  (*acc)[2] += dot4i8(a.x, b.z);
  (*acc)[3] += dot4i8(a.x, b.w);
  (*acc)[4] += dot4i8(a.y, b.x);
  (*acc)[5] += dot4i8(a.y, b.y);
  (*acc)[6] += dot4i8(a.y, b.z);
  (*acc)[7] += dot4i8(a.y, b.w);
  (*acc)[8] += dot4i8(a.z, b.x);
  (*acc)[9] += dot4i8(a.z, b.y);
  (*acc)[10] += dot4i8(a.z, b.z);
  (*acc)[11] += dot4i8(a.z, b.w);
  (*acc)[12] += dot4i8(a.w, b.x);
  (*acc)[13] += dot4i8(a.w, b.y);
  (*acc)[14] += dot4i8(a.w, b.z);
  (*acc)[15] += dot4i8(a.w, b.w);
}

// The 4·NB output columns of a thread (NB ≤ 4 blocks of 4 registers each); blocks past NB stay 0.
struct Blocks {
  b0: array<i32, 16>,
  b1: array<i32, 16>,
  b2: array<i32, 16>,
  b3: array<i32, 16>,
}

fn block_value(acc: ptr<function, Blocks>, cb: u32, i: u32) -> i32 {
  switch (cb) {
    case 0u: { return (*acc).b0[i]; }
    case 1u: { return (*acc).b1[i]; }
    case 2u: { return (*acc).b2[i]; }
    default: { return (*acc).b3[i]; }
  }
}

// The four lines (first word) of columns j0 .. j0 + 3, each `words` long; columns past `cols`
// re-read the last line (in bounds; their sums are never stored).
fn column_lines(j0: u32, cols: u32, words: u32) -> vec4<u32> {
  let last = cols - 1u;
  return vec4<u32>(min(j0, last), min(j0 + 1u, last), min(j0 + 2u, last), min(j0 + 3u, last)) * words;
}

// The workgroup's index in a 1-D list of `count` (dispatched 2-D past 65535 groups).
fn group_index(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wg.x + wg.y * groups.x;
}
