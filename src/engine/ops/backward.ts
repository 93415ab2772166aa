/**
 * Twin of backward.wgsl, the epilogue of e·Wᵀ into a layer's input:
 *   gh = rescale(acc, se + sw − 24) (+ ghRes when residual)    (Q24, wrapping add)
 *   gz = gh ⊙ act'(z)                                          (z: the previous layer's Q16 pre-activation)
 * gh is kept (ghOut) for a residual connection further down; max |gz| is folded into maxes[gzSlot].
 */
import type { Activation } from '../../protocol/spec.ts';
import { activationBackward } from './activation.ts';
import { rescaleAll } from './matmul.ts';
import { maxAbs, quantShift } from './quantize.ts';

export interface BackwardParams {
  [key: string]: number | boolean | string | null;
  count: number;
  eSlot: number;
  wSlot: number;
  gzSlot: number;
  /** null: identity (the input's producer has no activation: a pool, or a flatten of one). */
  act: Activation | null;
  residual: boolean;
}

export function backward(
  p: BackwardParams,
  b: {
    acc: Int32Array;
    z: Int32Array;
    ghRes: Int32Array;
    maxes: Uint32Array;
    ghOut: Int32Array;
    gz: Int32Array;
  },
): void {
  const { count } = p;
  const shift = quantShift(b.maxes[p.eSlot]) + quantShift(b.maxes[p.wSlot]) - 24;
  rescaleAll(b.acc, shift, b.ghOut, count);
  if (p.residual) for (let i = 0; i < count; i++) b.ghOut[i] = (b.ghOut[i] + b.ghRes[i]) | 0;
  if (p.act) activationBackward(p.act, b.z, b.ghOut, b.gz, count);
  else b.gz.set(b.ghOut.subarray(0, count));
  const m = maxAbs(b.gz, count);
  if (m > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m;
}
