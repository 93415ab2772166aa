// max |x_i| (as u32, |−2^31| = 2^31) of an i32 tensor, atomically folded into maxes[slot].
// The slot must be zero (or hold a max to combine with) before the dispatch. Max is associative and
// commutative, so any number of workgroups in any order give the same value.
// Needs fixed.wgsl. Dispatch: ceil(n / 256) workgroups, at most 1024 (grid-stride loop).

struct Params {
  n: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read_write> maxes: array<atomic<u32>>;

var<workgroup> partial: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) groups: vec3<u32>) {
  var m = 0u;
  for (var i = gid.x; i < p.n; i += groups.x * 256u) {
    m = max(m, abs_u32(x[i]));
  }
  partial[li] = m;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half >>= 1u) {
    if (li < half) { partial[li] = max(partial[li], partial[li + half]); }
    workgroupBarrier();
  }
  if (li == 0u && partial[0] != 0u) { atomicMax(&maxes[p.slot], partial[0]); }
}
