/**
 * Twin of forward.wgsl, the epilogue of a layer's x·W:
 *   z = rescale(acc, sx + sw − 24) + shrRound(bias, 8)      (Q16, wrapping add)
 *   h = act(z) (+ hIn when residual)                         (wrapping add)
 * sx = quantShift(maxes[xSlot]) (INPUT_SHIFT when xSlot = NONE), sw likewise; max |h| is folded into
 * maxes[outSlot] for the next layer's quantisation (outSlot = NONE: skipped).
 */
import type { Activation } from '../../protocol/spec.ts';
import { activate } from './activation.ts';
import { INPUT_SHIFT } from './gather.ts';
import { rescaleAddBias } from './matmul.ts';
import { NONE } from './op.ts';
import { maxAbs, quantShift } from './quantize.ts';

export interface ForwardParams {
  [key: string]: number | boolean | string | null;
  rows: number;
  n: number;
  xSlot: number;
  wSlot: number;
  outSlot: number;
  /** null: identity (the classifier's logits). */
  act: Activation | null;
  residual: boolean;
}

/** The operand shift a slot stands for (NONE: the gathered pixels). */
export function operandShift(maxes: Uint32Array, slot: number): number {
  return slot === NONE ? INPUT_SHIFT : quantShift(maxes[slot]);
}

export function forward(
  p: ForwardParams,
  b: { acc: Int32Array; bias: Int32Array; hIn: Int32Array; maxes: Uint32Array; z: Int32Array; h: Int32Array },
): void {
  const count = p.rows * p.n;
  const shift = operandShift(b.maxes, p.xSlot) + operandShift(b.maxes, p.wSlot) - 24;
  rescaleAddBias(b.acc, p.rows, p.n, shift, b.bias, 8, b.z);
  if (p.act) activate(p.act, b.z, b.h, count);
  else b.h.set(b.z.subarray(0, count));
  if (p.residual) for (let i = 0; i < count; i++) b.h[i] = (b.h[i] + b.hIn[i]) | 0;
  if (p.outSlot === NONE) return;
  const m = maxAbs(b.h, count);
  if (m > b.maxes[p.outSlot]) b.maxes[p.outSlot] = m;
}
