// Step boundary, one workgroup: zeroes the max-abs slots [clear_from, clear_from + clear_count) for
// the next step's quantisations and, when `advance` is 1, moves the step counters on
// (state[0]: training step, keys the RNG; state[1]: step within the uploaded batch range).

struct Params {
  clear_from: u32,
  clear_count: u32,
  advance: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> maxes: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32) {
  for (var i = li; i < p.clear_count; i += 64u) { maxes[p.clear_from + i] = 0u; }
  if (li == 0u && p.advance != 0u) {
    state[0] += 1u;
    state[1] += 1u;
  }
}
