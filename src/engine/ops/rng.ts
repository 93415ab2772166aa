/**
 * The counter-based hash RNG of the arithmetic contract: stateless, u32 in and out, identical on
 * every device. `mix` is lowbias32 (Chris Wellons' hash-prospector), a bijection on u32.
 */

/** Tensor ids that key the RNG streams. */
export const TENSOR = {
  SPLIT: 1,
  DATA_ORDER: 2,
  /** Generated datasets (blobs). */
  DATASET: 3,
  initW: (layer: number) => 0x100 + layer,
  srW: (layer: number) => 0x200 + layer,
  srErr: (layer: number) => 0x300 + layer,
} as const;

export function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The stream key of (seed, step, tensor). */
export function rngKey(seed: number, step: number, tensor: number): number {
  return mix(mix(mix(seed ^ 0x9e3779b9) ^ step) ^ tensor);
}

/** The i-th u32 of the stream `key`. */
export function rand(key: number, i: number): number {
  return mix(key ^ mix(i));
}

/** Indices 0..n−1 sorted by (rand(key, i), i): the contract's permutation. */
export function permutation(key: number, n: number): Uint32Array {
  const keys = new Float64Array(n);
  // rand < 2^32 and i < 2^21 pack exactly into one f64: sorting it sorts by (rand, i).
  if (n > 1 << 21) throw new Error(`permutation of ${n} items exceeds 2^21`);
  for (let i = 0; i < n; i++) keys[i] = rand(key, i) * 2 ** 21 + i;
  keys.sort();
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = keys[i] % 2 ** 21;
  return out;
}
