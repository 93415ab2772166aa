// max |x_i| (as u32, |−2^31| = 2^31) of an i32 tensor, folded into maxes[slot] with atomicMax.
// The slot must be zero (or hold a max to combine with) before the dispatch. Max is associative and
// commutative, so any grid in any order gives the same value. Each thread scans a grid-stride
// slice and publishes its maximum only if it beats the slot's current value (no workgroup barrier:
// they are expensive on software adapters, and the check keeps atomic traffic low on GPUs).
// Needs fixed.wgsl. Dispatch: min(ceil(n / 256), 64) workgroups.

struct Params {
  n: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read_write> maxes: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  var m = 0u;
  for (var i = gid.x; i < p.n; i += groups.x * 256u) {
    m = max(m, abs_u32(x[i]));
  }
  publish_max(p.slot, m);
}

fn publish_max(slot: u32, m: u32) {
  if (m > atomicLoad(&maxes[slot])) { atomicMax(&maxes[slot], m); }
}
