import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { testI32 } from './conv-test-cases.ts';
import { imageIndex } from './image.ts';
import { transpose } from './transpose.ts';

describe('transpose', () => {
  it('y[b][c][r] = x[b][r][c]; transposing back restores x', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer(),
        (batch, rows, cols, seed) => {
          const x = testI32(batch * rows * cols, seed);
          const y = new Int32Array(x.length);
          transpose({ batch, rows, cols, tiled: true }, { x, y });
          for (let b = 0; b < batch; b++)
            for (let r = 0; r < rows; r++)
              for (let c = 0; c < cols; c++)
                expect(y[(b * cols + c) * rows + r]).toBe(x[(b * rows + r) * cols + c]);
          const back = new Int32Array(x.length);
          transpose({ batch, rows: cols, cols: rows, tiled: true }, { x: y, y: back });
          expect(back).toEqual(x);
        },
      ),
    );
  });

  it('as flatten: hwc [B][H·W][C] → the channel-major chw order', () => {
    const s = { batch: 2, channels: 3, height: 2, width: 5 };
    const x = testI32(60, 9);
    const y = new Int32Array(60);
    transpose({ batch: 2, rows: 10, cols: 3, tiled: true }, { x, y });
    for (let b = 0; b < 2; b++)
      for (let c = 0; c < 3; c++)
        for (let r = 0; r < 2; r++)
          for (let q = 0; q < 5; q++)
            expect(y[imageIndex('chw', s, b, c, r, q)]).toBe(x[imageIndex('hwc', s, b, c, r, q)]);
  });
});
