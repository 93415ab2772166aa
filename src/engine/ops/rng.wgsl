// The counter-based hash RNG of the arithmetic contract (twin: rng.ts). u32 in, u32 out, wrapping.

fn rng_mix(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// The stream key of (seed, step, tensor).
fn rng_key(seed: u32, step: u32, tensor: u32) -> u32 {
  return rng_mix(rng_mix(rng_mix(seed ^ 0x9e3779b9u) ^ step) ^ tensor);
}

// The i-th u32 of the stream `key`.
fn rng_rand(key: u32, i: u32) -> u32 {
  return rng_mix(key ^ rng_mix(i));
}
