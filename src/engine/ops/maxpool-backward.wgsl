// Gradient of a 2×2 max-pool (twin: maxpool-backward.ts). One thread per input element (b, c, y, x)
// gathers from its window's output: gh = dy[(b, c, y/2, x/2)] when that window's arg is
// (y mod 2)·2 + x mod 2, else 0 (also 0 in an odd last row or column); then, fused, the pooled
// layer's activation derivative gz = gh ⊙ act'(z) (ACT 0: gz = gh) with max |gz| folded into
// maxes[gz_slot] (NONE: skip). gh is written too, for a residual connection around the pooled layer.
//   CHANNELS_LAST: all tensors [B][H][W][C] (pooled: [B][H/2][W/2][C]), else [B][C][H][W].
// Needs fixed.wgsl and activation.wgsl. Dispatch: ceil(B·C·H·W / 256) workgroups (2-D when large).

override CHANNELS_LAST: bool = true;
override ACT: u32 = 0u;
const NONE: u32 = 0xffffffffu;

struct Params {
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  gz_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<i32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read> z: array<i32>;
@group(0) @binding(4) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> gh: array<i32>;
@group(0) @binding(6) var<storage, read_write> gz: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  var m = 0u;
  if (i < p.batch * p.channels * p.height * p.width) {
    let oh = p.height / 2u;
    let ow = p.width / 2u;
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
    let oy = y / 2u;
    let ox = x / 2u;
    var g = 0;
    if (oy < oh && ox < ow) {
      var o: u32;
      if (CHANNELS_LAST) {
        o = ((b * oh + oy) * ow + ox) * p.channels + c;
      } else {
        o = ((b * p.channels + c) * oh + oy) * ow + ox;
      }
      if (arg[o] == (y & 1u) * 2u + (x & 1u)) { g = dy[o]; }
    }
    gh[i] = g;
    let d = activate_backward(ACT, z[i], g);
    gz[i] = d;
    m = abs_u32(d);
  }
  if (p.gz_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], m); }
}
