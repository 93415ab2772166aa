/** fast-check arbitraries shared by the conv ops' CPU and GPU tests (test-only; not part of the engine). */
import fc from 'fast-check';
import type { ImageLayout } from './image.ts';

/** Random image batch shapes with a layout: odd sizes, 1×1 images, sizes below a kernel. */
export const imageCases = (maxSide = 9, maxChannels = 4) =>
  fc.record({
    batch: fc.integer({ min: 1, max: 3 }),
    channels: fc.integer({ min: 1, max: maxChannels }),
    height: fc.integer({ min: 1, max: maxSide }),
    width: fc.integer({ min: 1, max: maxSide }),
    layout: fc.constantFrom<ImageLayout>('chw', 'hwc'),
  });

/** Random conv geometries (kernel 1/3/5, stride 1/2) with a layout. */
export const convCases = (maxSide = 9, maxChannels = 4) =>
  fc
    .tuple(imageCases(maxSide, maxChannels), fc.constantFrom(1, 3, 5), fc.constantFrom(1, 2))
    .map(([image, kernel, stride]) => ({ ...image, kernel, stride }));

/** Deterministic pseudo-random i32s of about `bits` bits (xorshift32), for tests. */
export function testI32(length: number, seed: number, bits = 32): Int32Array {
  const out = new Int32Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = bits >= 32 ? x | 0 : bits <= 0 ? 0 : (x | 0) >> (32 - bits);
  }
  return out;
}
