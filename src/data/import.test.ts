import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDataset } from './format.ts';
import { DatasetError, importDataset } from './import.ts';
import { writeCsv, writeIdx, writeNpy } from './writers.ts';

/** 30 examples of 2×3 "images", 3 classes, every pixel distinct per row. */
function examples() {
  const count = 30;
  const pixels = new Uint8Array(count * 6).map((_, i) => (i * 7 + Math.floor(i / 6)) % 256);
  const labels = new Uint8Array(count).map((_, i) => i % 3);
  return { count, pixels, labels };
}

describe('importDataset', () => {
  it('turns IDX, CSV and .npy copies of one dataset into one canonical binary', () => {
    const { count, pixels, labels } = examples();
    const idx = importDataset({
      format: 'idx',
      images: writeIdx([count, 2, 3], pixels),
      labels: writeIdx([count], labels),
    });
    const csv = importDataset({
      format: 'csv',
      csv: writeCsv(6, pixels, labels, 'digit'),
      labelColumn: 'digit',
    });
    const npy = importDataset({
      format: 'npy',
      features: writeNpy([count, 2, 3], pixels),
      labels: writeNpy([count], labels),
    });
    expect(idx.sha256).toBe(csv.sha256);
    expect(npy.sha256).toBe(idx.sha256);
    expect(idx.shape).toEqual([2, 3]);
    expect(idx.classCounts).toEqual([10, 10, 10]);
    expect(idx.scaling).toBeNull();
    const back = decodeDataset('x', idx.bytes, idx.sha256);
    expect(back.pixels).toEqual(pixels);
    expect(back.labels).toEqual(labels);
  });

  it('scales float features per column to 0…255 and says how', () => {
    const values = new Float32Array([0, -1, 0.5, 1, 1, 3, 0.25, 2]);
    const out = importDataset({
      format: 'npy',
      features: writeNpy([4, 2], values),
      labels: writeNpy([4], new Uint8Array([0, 1, 0, 1])),
    });
    expect(out.scaling).toEqual({ min: [0, -1], max: [1, 3] });
    expect(Array.from(decodeDataset('x', out.bytes).pixels)).toEqual([0, 0, 128, 128, 255, 255, 64, 191]);
  });

  it('numbers named CSV labels in sorted order', () => {
    const csv = new TextEncoder().encode('a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n');
    const out = importDataset({ format: 'csv', csv, labelColumn: 'kind' });
    expect(out.labelNames).toEqual(['cat', 'dog']);
    expect(Array.from(decodeDataset('x', out.bytes).labels)).toEqual([0, 1, 0]);
  });

  it('counts duplicate examples', () => {
    const csv = new TextEncoder().encode('a,b,y\n1,2,0\n3,4,1\n1,2,1\n');
    expect(importDataset({ format: 'csv', csv, labelColumn: 'y' }).duplicates).toEqual({
      count: 1,
      first: [[0, 2]],
    });
  });

  const refusals: Array<[string, () => unknown, RegExp]> = [
    [
      'a CSV row with a missing field',
      () =>
        importDataset({
          format: 'csv',
          csv: new TextEncoder().encode('a,b,y\n1,2,0\n3,1\n'),
          labelColumn: 'y',
        }),
      /CSV row 3: 2 fields, the header has 3/,
    ],
    [
      'a CSV value that is not a number',
      () =>
        importDataset({
          format: 'csv',
          csv: new TextEncoder().encode('a,b,y\n1,x,0\n3,4,1\n'),
          labelColumn: 'y',
        }),
      /CSV row 2, column 'b': 'x' is not a number/,
    ],
    [
      'a CSV without the label column',
      () => importDataset({ format: 'csv', csv: new TextEncoder().encode('a,b\n1,2\n'), labelColumn: 'y' }),
      /no column named 'y'/,
    ],
    [
      'IDX files that disagree on the count',
      () =>
        importDataset({
          format: 'idx',
          images: writeIdx([3, 2], new Uint8Array(6)),
          labels: writeIdx([2], new Uint8Array([0, 1])),
        }),
      /labels: 2 labels for 3 examples/,
    ],
    [
      'an IDX file cut short',
      () =>
        importDataset({
          format: 'idx',
          images: writeIdx([3, 2], new Uint8Array(6)).slice(0, 12),
          labels: writeIdx([3], new Uint8Array([0, 1, 1])),
        }),
      /images: 12 bytes, its header \(3 × 2\) says 18/,
    ],
    [
      'a class with no examples',
      () =>
        importDataset({
          format: 'idx',
          images: writeIdx([3, 1], new Uint8Array(3)),
          labels: writeIdx([3], new Uint8Array([0, 2, 2])),
        }),
      /class 1 has no examples/,
    ],
    [
      'one class only',
      () =>
        importDataset({
          format: 'idx',
          images: writeIdx([2, 1], new Uint8Array(2)),
          labels: writeIdx([2], new Uint8Array([1, 1])),
        }),
      /class 0 has no examples|at least 2 classes/,
    ],
    [
      'a .npy that is not one',
      () => importDataset({ format: 'npy', features: new Uint8Array(20), labels: new Uint8Array(20) }),
      /features: not a \.npy file/,
    ],
  ];
  for (const [what, run, message] of refusals) {
    it(`refuses ${what}, naming where`, () => {
      expect(run).toThrow(DatasetError);
      expect(run).toThrow(message);
    });
  }

  it('never crashes on random bytes: a DatasetError or a dataset', () => {
    const formats = fc.oneof(
      fc.record({
        format: fc.constant('idx' as const),
        images: fc.uint8Array({ maxLength: 64 }),
        labels: fc.uint8Array({ maxLength: 64 }),
      }),
      fc.record({
        format: fc.constant('npy' as const),
        features: fc.uint8Array({ maxLength: 200 }),
        labels: fc.uint8Array({ maxLength: 64 }),
      }),
      fc.record({
        format: fc.constant('csv' as const),
        csv: fc.string({ maxLength: 200 }).map((s) => new TextEncoder().encode(`a,b,y\n${s}`)),
        labelColumn: fc.constant('y'),
      }),
    );
    fc.assert(
      fc.property(formats, (upload) => {
        try {
          importDataset(upload);
        } catch (err) {
          if (!(err instanceof DatasetError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzzes headers of real IDX files: a DatasetError or a dataset', () => {
    const good = writeIdx([4, 2], new Uint8Array(8));
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.nat(255), (at, value) => {
        const bad = good.slice();
        bad[at] = value;
        try {
          importDataset({ format: 'idx', images: bad, labels: writeIdx([4], new Uint8Array([0, 1, 0, 1])) });
        } catch (err) {
          if (!(err instanceof DatasetError)) throw err;
        }
      }),
    );
  });
});
