// Gradient of the global average pool (twin: gap-backward.ts). One thread per input element
// (b, c, y, x): gh = round_half_even(dy[b][c] / (H·W)) (pool-div.wgsl), then, fused, the pooled
// layer's activation derivative gz = gh ⊙ act′(z) (ACT 0: gz = gh), max |gz| folded into
// maxes[gz_slot] (NONE: skip). gh is written too, for a residual connection around the pooled layer.
//   CHANNELS_LAST: gh, gz and z are [B][H][W][C], else [B][C][H][W]; dy is [B][C].
// Needs fixed.wgsl, activation.wgsl and pool-div.wgsl. Dispatch: ceil(B·C·H·W / 256) (2-D when large).

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
@group(0) @binding(2) var<storage, read> z: array<i32>;
@group(0) @binding(3) var<storage, read_write> maxes: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> gh: array<i32>;
@group(0) @binding(5) var<storage, read_write> gz: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  var m = 0u;
  let n = p.height * p.width;
  if (i < p.batch * p.channels * n) {
    var bc: u32;
    if (CHANNELS_LAST) {
      bc = (i / (n * p.channels)) * p.channels + i % p.channels;
    } else {
      bc = i / n;
    }
    let g = dy[bc];
    let share = div_round_even_i64(vec2<u32>(u32(g), select(0u, 0xffffffffu, g < 0)), n);
    gh[i] = share;
    let d = activate_backward(ACT, z[i], share);
    gz[i] = d;
    m = abs_u32(d);
  }
  if (p.gz_slot == NONE) { return; }
  if (m > atomicLoad(&maxes[p.gz_slot])) { atomicMax(&maxes[p.gz_slot], m); }
}
