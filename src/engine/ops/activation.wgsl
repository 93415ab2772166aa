// Integer activations on Q16 pre-activations and their derivatives on Q24 errors
// (twin: activation.ts). Needs fixed.wgsl. `act`: 0 identity, 1 relu, 2 leaky_relu, 3 hardtanh, 4 gelu.

const ONE_Q16: i32 = 65536;
const GELU_INV_SQRT2_Q16: i32 = 46341;
const GELU_B_Q16: i32 = 115933;
const GELU_A_Q16: i32 = -18927;

// i-GELU's L(u) (x) and the clipped offset t = min(|u|, −b) + b (y).
fn gelu_l(u: i32) -> vec2<i32> {
  let t = min(abs(u), GELU_B_Q16) - GELU_B_Q16;
  let mag = mul_shr(mul_shr(t, t, 16u), GELU_A_Q16, 16u) + ONE_Q16;
  return vec2<i32>(select(select(0, -mag, u < 0), mag, u > 0), t);
}

fn gelu_q16(z: i32) -> i32 {
  let l = gelu_l(mul_shr(z, GELU_INV_SQRT2_Q16, 16u)).x;
  return mul_shr(z, ONE_Q16 + l, 17u);
}

fn gelu_grad_q16(z: i32) -> i32 {
  let u = mul_shr(z, GELU_INV_SQRT2_Q16, 16u);
  let lt = gelu_l(u);
  let dl = mul_shr(lt.y, 2 * GELU_A_Q16, 16u);
  return shr_round(ONE_Q16 + lt.x, 1) + mul_shr(u, dl, 17u);
}

fn activate(act: u32, z: i32) -> i32 {
  switch (act) {
    case 1u: { return max(z, 0); }
    case 2u: { return select(z >> 3u, z, z >= 0); }
    case 3u: { return clamp(z, -ONE_Q16, ONE_Q16); }
    case 4u: { return gelu_q16(z); }
    default: { return z; }
  }
}

// g ⊙ act'(z): g Q24, z Q16.
fn activate_backward(act: u32, z: i32, g: i32) -> i32 {
  switch (act) {
    case 1u: { return select(0, g, z > 0); }
    case 2u: { return select(shr_round(g, 3), g, z > 0); }
    case 3u: { return select(0, g, z < ONE_Q16 && z > -ONE_Q16); }
    case 4u: { return mul_shr(g, gelu_grad_q16(z), 16u); }
    default: { return g; }
  }
}
