// 2×2 max-pool, stride 2 (twin: maxpool.ts). One thread per output (b, c, oy, ox): the largest of
// x at (2oy + dy, 2ox + dx), dy, dx ∈ {0, 1}; arg = dy·2 + dx of the first maximum in that order.
// An odd last row or column is in no window. max |y| is folded into maxes[out_slot] (NONE: skip).
//   CHANNELS_LAST: x and y are [B][H][W][C], else [B][C][H][W].
// Needs fixed.wgsl. Dispatch: ceil(B·C·⌊H/2⌋·⌊W/2⌋ / 256) workgroups (2-D when large).

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
@group(0) @binding(4) var<storage, read_write> arg: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let o = gid.x + gid.y * groups.x * 256u;
  let oh = p.height / 2u;
  let ow = p.width / 2u;
  var m = 0u;
  if (o < p.batch * p.channels * oh * ow) {
    // (b, c, oy, ox) of output o, and the input index of the window's top-left and its steps.
    var i: u32;
    var step_x: u32;
    if (CHANNELS_LAST) {
      let c = o % p.channels;
      let pix = o / p.channels;
      let ox = pix % ow;
      let oy = (pix / ow) % oh;
      let b = pix / (ow * oh);
      i = ((b * p.height + 2u * oy) * p.width + 2u * ox) * p.channels + c;
      step_x = p.channels;
    } else {
      let ox = o % ow;
      let oy = (o / ow) % oh;
      let bc = o / (ow * oh);
      i = (bc * p.height + 2u * oy) * p.width + 2u * ox;
      step_x = 1u;
    }
    let step_y = step_x * p.width;
    var best = x[i];
    var a = 0u;
    let v1 = x[i + step_x];
    if (v1 > best) { best = v1; a = 1u; }
    let v2 = x[i + step_y];
    if (v2 > best) { best = v2; a = 2u; }
    let v3 = x[i + step_y + step_x];
    if (v3 > best) { best = v3; a = 3u; }
    y[o] = best;
    arg[o] = a;
    m = abs_u32(best);
  }
  if (p.out_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.out_slot])) { atomicMax(&maxes[p.out_slot], m); }
}
