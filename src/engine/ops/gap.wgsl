// Global average pool (twin: gap.ts): y[b][c] = round_half_even(S / (H·W)), S the exact sum of the
// channel's pixels (64-bit, pool-div.wgsl). One thread per (b, c); with CHANNELS_LAST ([B][H][W][C])
// neighbouring threads read neighbouring words at every pixel, else ([B][C][H][W]) each thread reads
// one contiguous plane. max |y| is folded into maxes[out_slot] (NONE: skip).
// Needs fixed.wgsl and pool-div.wgsl. Dispatch: ceil(B·C / 64) workgroups.

override CHANNELS_LAST: bool = true;
const NONE: u32 = 0xffffffffu;

struct Params {
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  out_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> y: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  var m = 0u;
  if (o < p.batch * p.channels) {
    let b = o / p.channels;
    let c = o % p.channels;
    let n = p.height * p.width;
    var first: u32;
    var step: u32;
    if (CHANNELS_LAST) {
      first = b * n * p.channels + c;
      step = p.channels;
    } else {
      first = o * n;
      step = 1u;
    }
    var sum = vec2<u32>(0u, 0u);
    for (var i = 0u; i < n; i++) { sum = add_i64(sum, x[first + i * step]); }
    let mean = div_round_even_i64(sum, n);
    y[o] = mean;
    m = abs_u32(mean);
  }
  if (p.out_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.out_slot])) { atomicMax(&maxes[p.out_slot], m); }
}
