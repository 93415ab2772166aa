/**
 * Twin of col2im-backward.wgsl: a conv layer's input gradient in one pass, col2im fused with the
 * dense backward epilogue (backward.ts):
 *   gh = rescale(col2im(dP), se + sw − 24) (+ ghRes when residual)    (Q24, wrapping add)
 *   gz = gh ⊙ act′(z)                    (act null: gz = gh, e.g. when a pool sits between the layers)
 * ghOut keeps gh for a residual connection; max |gz| is folded into maxes[gzSlot] (NONE: skipped).
 */
import type { Activation } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { col2imSum } from './col2im.ts';
import { type ConvGeometry, elementCount, type ImageLayout } from './image.ts';
import { rescaleAll } from './matmul.ts';
import { maxAbs, quantShift } from './quantize.ts';

const NONE = 0xffffffff;

export interface Col2imBackwardParams extends ConvGeometry {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  eSlot: number;
  wSlot: number;
  gzSlot: number;
  act: Activation | null;
  residual: boolean;
}

export function col2imBackward(
  p: Col2imBackwardParams,
  b: {
    dP: Int32Array;
    z: Int32Array;
    ghRes: Int32Array;
    maxes: Uint32Array;
    ghOut: Int32Array;
    gz: Int32Array;
  },
): void {
  const n = elementCount(p);
  col2imSum(b.dP, p.layout, p, b.ghOut);
  rescaleAll(b.ghOut, quantShift(b.maxes[p.eSlot]) + quantShift(b.maxes[p.wSlot]) - 24, b.ghOut, n);
  if (p.residual) for (let i = 0; i < n; i++) b.ghOut[i] = (b.ghOut[i] + b.ghRes[i]) | 0;
  if (p.act) activationBackward(p.act, b.z, b.ghOut, b.gz, n);
  else b.gz.set(b.ghOut.subarray(0, n));
  if (p.gzSlot === NONE) return;
  const m = maxAbs(b.gz, n);
  if (m > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m;
}
