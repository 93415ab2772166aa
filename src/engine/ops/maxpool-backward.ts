/**
 * Twin of maxpool-backward.wgsl: the gradient of a 2×2 max-pool routed to each window's argmax
 * (docs/ARITHMETIC.md, "Max-pool"), computed per input element (a gather, no atomics):
 *   gh[b][c][y][x] = dy[b][c][y/2][x/2] if y < 2·⌊H/2⌋, x < 2·⌊W/2⌋ and arg there = (y mod 2)·2 + x mod 2,
 *                    else 0
 *   gz = gh ⊙ act'(z)   (the pooled layer's activation derivative, fused; act null: gz = gh)
 * max |gz| is folded into maxes[gzSlot] (NONE: skipped). gh is kept for a residual connection.
 */
import type { Activation } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { elementCount, type ImageLayout, type ImageShape, imageIndex } from './image.ts';
import { checkPoolable, pooledShape } from './maxpool.ts';
import { maxAbs } from './quantize.ts';

const NONE = 0xffffffff;

export interface MaxpoolBackwardParams extends ImageShape {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  act: Activation | null;
  gzSlot: number;
}

export function maxpoolBackward(
  p: MaxpoolBackwardParams,
  b: { dy: Int32Array; arg: Uint32Array; z: Int32Array; maxes: Uint32Array; gh: Int32Array; gz: Int32Array },
): void {
  checkPoolable(p);
  const out = pooledShape(p);
  const n = elementCount(p);
  for (let e = 0; e < p.batch; e++)
    for (let c = 0; c < p.channels; c++)
      for (let y = 0; y < p.height; y++)
        for (let x = 0; x < p.width; x++) {
          const oy = y >> 1;
          const ox = x >> 1;
          let g = 0;
          if (oy < out.height && ox < out.width) {
            const o = imageIndex(p.layout, out, e, c, oy, ox);
            if (b.arg[o] === (y & 1) * 2 + (x & 1)) g = b.dy[o];
          }
          b.gh[imageIndex(p.layout, p, e, c, y, x)] = g;
        }
  if (p.act) activationBackward(p.act, b.z, b.gh, b.gz, n);
  else b.gz.set(b.gh.subarray(0, n));
  if (p.gzSlot === NONE) return;
  const m = maxAbs(b.gz, n);
  if (m > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m;
}
