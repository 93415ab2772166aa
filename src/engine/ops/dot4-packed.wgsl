// dot4i8 for matmul.wgsl on adapters with the packed_4x8_integer_dot_product language feature.
requires packed_4x8_integer_dot_product;

fn dot4i8(x: u32, y: u32) -> i32 {
  return dot4I8Packed(x, y);
}
