// Int8 matmul with exact i32 accumulation: C[m×n] = A · B, both operands "k-packed":
//   a: m lines of kw words, line i holds A(i, 0..k) four int8 to a word (byte t = k index 4w + t);
//   b: n lines of kw words, line j holds B(0..k, j) likewise (B transposed);
// lines are zero-padded to whole words, so every load is one aligned u32 and the inner loop is a
// 4-wide int8 dot product: `dot4i8` from dot4-packed.wgsl (dot4I8Packed) or dot4-plain.wgsl.
// The producers (quantize.wgsl, gather.wgsl) write each operand in the line order its matmuls need.
//
// Each thread computes a 4×4 block of C from registers: no workgroup memory and no barriers, which
// suits every implementation (barriers cost a fiber switch on SwiftShader). Integer addition is
// associative, so blocking and summation order cannot change a bit of C.
// Dispatch: (ceil(n / 32), ceil(m / 32)) workgroups.

struct Params {
  m: u32,
  n: u32,
  kw: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i0 = gid.y * 4u;
  let j0 = gid.x * 4u;
  if (i0 >= p.m || j0 >= p.n) { return; }
  // Lines past the edge re-read the last line (always in bounds); their sums are never stored.
  var arow: array<u32, 4>;
  var bcol: array<u32, 4>;
  for (var t = 0u; t < 4u; t++) {
    arow[t] = min(i0 + t, p.m - 1u) * p.kw;
    bcol[t] = min(j0 + t, p.n - 1u) * p.kw;
  }
  var acc: array<i32, 16>;
  for (var w = 0u; w < p.kw; w++) {
    let a0 = a[arow[0] + w];
    let a1 = a[arow[1] + w];
    let a2 = a[arow[2] + w];
    let a3 = a[arow[3] + w];
    let b0 = b[bcol[0] + w];
    let b1 = b[bcol[1] + w];
    let b2 = b[bcol[2] + w];
    let b3 = b[bcol[3] + w];
    acc[0] += dot4i8(a0, b0);
    acc[1] += dot4i8(a0, b1);
    acc[2] += dot4i8(a0, b2);
    acc[3] += dot4i8(a0, b3);
    acc[4] += dot4i8(a1, b0);
    acc[5] += dot4i8(a1, b1);
    acc[6] += dot4i8(a1, b2);
    acc[7] += dot4i8(a1, b3);
    acc[8] += dot4i8(a2, b0);
    acc[9] += dot4i8(a2, b1);
    acc[10] += dot4i8(a2, b2);
    acc[11] += dot4i8(a2, b3);
    acc[12] += dot4i8(a3, b0);
    acc[13] += dot4i8(a3, b1);
    acc[14] += dot4i8(a3, b2);
    acc[15] += dot4i8(a3, b3);
  }
  for (var r = 0u; r < 4u; r++) {
    for (var s = 0u; s < 4u; s++) {
      if (i0 + r < p.m && j0 + s < p.n) { c[(i0 + r) * p.n + j0 + s] = acc[r * 4u + s]; }
    }
  }
}
