/**
 * "blobs": a small generated dataset for fast tests, byte-identical everywhere because it comes
 * from the integer hash RNG. 512 examples, 64 u8 features, 4 classes. Each class has a random
 * centre in [64, 192)^64; an example is its class centre plus the sum of two uniform integers in
 * [−48, 48) per feature, clamped to [0, 255]. Labels cycle through the classes.
 */
import { rand, rngKey, TENSOR } from '../engine/ops/rng.ts';
import { encodeDataset } from './format.ts';

export const BLOBS = { count: 512, features: 64, classes: 4, seed: 0xb10b5 } as const;

export function generateBlobs(): Uint8Array {
  const { count, features, classes, seed } = BLOBS;
  const centreKey = rngKey(seed, 0, TENSOR.DATASET);
  const noiseKey = rngKey(seed, 1, TENSOR.DATASET);
  const pixels = new Uint8Array(count * features);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % classes;
    labels[i] = c;
    for (let f = 0; f < features; f++) {
      const centre = 64 + (rand(centreKey, c * features + f) % 128);
      const j = 2 * (i * features + f);
      const noise = (rand(noiseKey, j) % 96) + (rand(noiseKey, j + 1) % 96) - 96;
      pixels[i * features + f] = Math.min(255, Math.max(0, centre + noise));
    }
  }
  return encodeDataset({ count, features, classes, pixels, labels });
}
