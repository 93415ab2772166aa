// col2im's gather, shared by col2im.wgsl and col2im-backward.wgsl (twin: col2im.ts col2imSum).
// The including kernel declares `p` (a Params struct starting batch, channels, height, width,
// kernel, stride, out_h, out_w), the dP binding `d_patches` and the override CHANNELS_LAST
// (WGSL resolves module-scope names in any order).
//
// col2im_at(i): for input element i = (b, c, y, x) in the layout, the wrapping i32 sum of the
// dP[(b, oy, ox)][(c, ky, kx)] with oy·stride + ky − pad = y and ox·stride + kx − pad = x
// (at most ⌈k/s⌉² terms). One thread per element, no atomics: the same integer in any order.

fn col2im_at(i: u32) -> i32 {
  var b: u32;
  var c: u32;
  var y: u32;
  var x: u32;
  if (CHANNELS_LAST) {
    c = i % p.channels;
    let pix = i / p.channels;
    x = pix % p.width;
    y = (pix / p.width) % p.height;
    b = pix / (p.width * p.height);
  } else {
    x = i % p.width;
    y = (i / p.width) % p.height;
    c = (i / (p.width * p.height)) % p.channels;
    b = i / (p.width * p.height * p.channels);
  }
  let k = p.kernel;
  let pad = k / 2u;
  let cols = p.channels * k * k;
  var sum = 0;
  for (var ky = 0u; ky < k; ky++) {
    // oy·stride = y + pad − ky must be ≥ 0, a multiple of stride and < out_h·stride.
    let ty = y + pad;
    if (ty < ky) { break; }
    let sy = ty - ky;
    if (sy % p.stride != 0u || sy / p.stride >= p.out_h) { continue; }
    let row_y = (b * p.out_h + sy / p.stride) * p.out_w;
    for (var kx = 0u; kx < k; kx++) {
      let tx = x + pad;
      if (tx < kx) { break; }
      let sx = tx - kx;
      if (sx % p.stride != 0u || sx / p.stride >= p.out_w) { continue; }
      sum += d_patches[(row_y + sx / p.stride) * cols + (c * k + ky) * k + kx];
    }
  }
  return sum;
}
