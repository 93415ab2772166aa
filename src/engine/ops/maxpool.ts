/**
 * Twin of maxpool.wgsl: 2×2 max-pool, stride 2 (docs/ARITHMETIC.md, "Max-pool"). Output
 * (b, c, oy, ox), oy < ⌊H/2⌋, ox < ⌊W/2⌋, is the largest of the four inputs (2oy + dy, 2ox + dx);
 * `arg` records which, as dy·2 + dx, the first in that (row-major) order on ties. An odd last row or
 * column is in no window. max |y| is folded into maxes[outSlot] for the next layer's quantisation
 * (outSlot = NONE: skipped). Input and output share `layout`.
 */
import { type ImageLayout, type ImageShape, imageIndex } from './image.ts';
import { maxAbs } from './quantize.ts';

const NONE = 0xffffffff;

export interface MaxpoolParams extends ImageShape {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  outSlot: number;
}

/** The pooled shape of an input shape: ⌊H/2⌋ × ⌊W/2⌋. */
export function pooledShape(s: ImageShape): ImageShape {
  return { ...s, height: Math.floor(s.height / 2), width: Math.floor(s.width / 2) };
}

export function checkPoolable(s: ImageShape): void {
  if (s.height < 2 || s.width < 2) throw new Error(`maxpool needs at least 2×2, has ${s.height}×${s.width}`);
}

export function maxpool(
  p: MaxpoolParams,
  b: { x: Int32Array; maxes: Uint32Array; y: Int32Array; arg: Uint32Array },
): void {
  checkPoolable(p);
  const out = pooledShape(p);
  for (let n = 0; n < p.batch; n++)
    for (let c = 0; c < p.channels; c++)
      for (let oy = 0; oy < out.height; oy++)
        for (let ox = 0; ox < out.width; ox++) {
          let best = b.x[imageIndex(p.layout, p, n, c, 2 * oy, 2 * ox)];
          let arg = 0;
          for (let w = 1; w < 4; w++) {
            const v = b.x[imageIndex(p.layout, p, n, c, 2 * oy + (w >> 1), 2 * ox + (w & 1))];
            if (v > best) {
              best = v;
              arg = w;
            }
          }
          const o = imageIndex(p.layout, out, n, c, oy, ox);
          b.y[o] = best;
          b.arg[o] = arg;
        }
  if (p.outSlot === NONE) return;
  const m = maxAbs(b.y, p.batch * p.channels * out.height * out.width);
  if (m > b.maxes[p.outSlot]) b.maxes[p.outSlot] = m;
}
