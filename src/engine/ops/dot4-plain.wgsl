// dot4i8 for matmul.wgsl in core WGSL: sign-extend each byte and take an integer dot product.
// Gives exactly the bits of dot4I8Packed (|sum| ≤ 4·128², no overflow).

fn unpack_i8x4(x: u32) -> vec4<i32> {
  let s = bitcast<i32>(x);
  return vec4<i32>(extractBits(s, 0u, 8u), extractBits(s, 8u, 8u), extractBits(s, 16u, 8u), extractBits(s, 24u, 8u));
}

fn dot4i8(x: u32, y: u32) -> i32 {
  return dot(unpack_i8x4(x), unpack_i8x4(y));
}
