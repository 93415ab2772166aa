/**
 * Twin of gap-backward.wgsl: the gradient of the global average pool (docs/ARITHMETIC.md, "Global
 * average pool"). Every pixel of channel c of example b gets the same share
 *   gh[b][c][y][x] = round_half_even(dy[b][c] / (H·W))
 * then, fused, the pooled layer's activation derivative gz = gh ⊙ act′(z) (act null: gz = gh), with
 * max |gz| folded into maxes[gzSlot] (NONE: skipped). gh is kept for a residual connection.
 */
import type { Activation } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { checkPoolPixels, divRoundHalfEven } from './gap.ts';
import { elementCount, type ImageLayout, type ImageShape, imageIndex } from './image.ts';
import { maxAbs } from './quantize.ts';

const NONE = 0xffffffff;

export interface GapBackwardParams extends ImageShape {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  act: Activation | null;
  gzSlot: number;
}

export function gapBackward(
  p: GapBackwardParams,
  b: { dy: Int32Array; z: Int32Array; maxes: Uint32Array; gh: Int32Array; gz: Int32Array },
): void {
  checkPoolPixels(p);
  const n = elementCount(p);
  const pixels = p.height * p.width;
  for (let e = 0; e < p.batch; e++)
    for (let c = 0; c < p.channels; c++) {
      const share = divRoundHalfEven(b.dy[e * p.channels + c], pixels);
      for (let y = 0; y < p.height; y++)
        for (let x = 0; x < p.width; x++) b.gh[imageIndex(p.layout, p, e, c, y, x)] = share;
    }
  if (p.act) activationBackward(p.act, b.z, b.gh, b.gz, n);
  else b.gz.set(b.gh.subarray(0, n));
  if (p.gzSlot === NONE) return;
  const m = maxAbs(b.gz, n);
  if (m > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m;
}
