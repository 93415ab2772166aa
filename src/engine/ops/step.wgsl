// Step boundary, one workgroup. Max-abs slots are grouped four per layer from slot 0:
// [x, e, w, w_next]. For each of the first `layers` groups: x and e are zeroed for the next step,
// w takes w_next (the max |W| the SGD kernel just folded in) and w_next is zeroed. Then the slots
// [clear_from, clear_from + clear_count) are zeroed (validation chunks), and when `advance` is 1 the
// step counters move on (state[0]: training step, keys the RNG; state[1]: step within the uploaded
// batch range). Every thread touches its own slots only.

struct Params {
  layers: u32,
  clear_from: u32,
  clear_count: u32,
  advance: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> maxes: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32) {
  for (var l = li; l < p.layers; l += 64u) {
    let base = 4u * l;
    maxes[base] = 0u;
    maxes[base + 1u] = 0u;
    maxes[base + 2u] = maxes[base + 3u];
    maxes[base + 3u] = 0u;
  }
  for (var i = li; i < p.clear_count; i += 64u) { maxes[p.clear_from + i] = 0u; }
  if (li == 0u && p.advance != 0u) {
    state[0] += 1u;
    state[1] += 1u;
  }
}
