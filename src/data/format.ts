/**
 * The canonical dataset binary (docs/DATASETS.md). Little-endian, 16-byte header:
 *
 *   0  4  magic "CDS1"
 *   4  4  u32 count       examples
 *   8  4  u32 features    u8 values per example
 *  12  4  u32 classes     labels are in [0, classes)
 *  16  count·features     u8 features, example-major
 *  ..  count              u8 labels
 *
 * The dataset's identity is sha256 of the whole file. Decoding takes bytes, so Node (file) and the
 * browser (fetch) load the same thing the same way.
 */
import { type Hex, sha256 } from 'viem';
import type { Dataset } from '../engine/types.ts';

const MAGIC = [0x43, 0x44, 0x53, 0x31]; // "CDS1"
export const HEADER_BYTES = 16;

export function encodeDataset(d: Omit<Dataset, 'sha256' | 'name'>): Uint8Array {
  const { count, features, classes, pixels, labels } = d;
  if (pixels.length !== count * features)
    throw new Error(`expected ${count * features} features, got ${pixels.length}`);
  if (labels.length !== count) throw new Error(`expected ${count} labels, got ${labels.length}`);
  const out = new Uint8Array(HEADER_BYTES + count * features + count);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, count, true);
  view.setUint32(8, features, true);
  view.setUint32(12, classes, true);
  out.set(pixels, HEADER_BYTES);
  out.set(labels, HEADER_BYTES + count * features);
  return out;
}

export function sha256Of(bytes: Uint8Array): Hex {
  return sha256(bytes);
}

/**
 * Decodes and checks a dataset binary. With `expectedSha256`, a mismatch is an error that names both
 * hashes (a stale or corrupted file must never be trained on silently).
 */
export function decodeDataset(name: string, bytes: Uint8Array, expectedSha256?: string): Dataset {
  const actual = sha256Of(bytes);
  if (expectedSha256 !== undefined && actual !== expectedSha256.toLowerCase()) {
    throw new Error(`dataset '${name}': sha256 is ${actual}, expected ${expectedSha256}`);
  }
  if (bytes.length < HEADER_BYTES || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error(`dataset '${name}': not a CDS1 dataset binary`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4, true);
  const features = view.getUint32(8, true);
  const classes = view.getUint32(12, true);
  const expectedLength = HEADER_BYTES + count * features + count;
  if (bytes.length !== expectedLength) {
    throw new Error(`dataset '${name}': ${bytes.length} bytes, header says ${expectedLength}`);
  }
  const pixels = bytes.subarray(HEADER_BYTES, HEADER_BYTES + count * features);
  const labels = bytes.subarray(HEADER_BYTES + count * features);
  for (let i = 0; i < count; i++) {
    if (labels[i] >= classes)
      throw new Error(`dataset '${name}': label ${labels[i]} of example ${i} ≥ ${classes}`);
  }
  return { name, sha256: actual, count, features, classes, pixels, labels };
}
