/**
 * Twin of conv-forward.wgsl: a conv layer's forward pass as one implicit GEMM with the forward
 * epilogue fused (docs/ARITHMETIC.md, "A conv layer's step"):
 *   acc = P8 · w8            P8 = im2col(x) at the RNE shift sx (the kernel gathers it on the fly)
 *   z   = rescale(acc, sx + sw − 24) + shrRound(bias, 8);  h = act(z) (+ hIn);  max |h| → maxes[outSlot]
 * The same integers as im2col, matmul and forward in sequence (conv-loops.ts walks the patches
 * without building them, then forward.ts's epilogue).
 */
import type { Activation } from '../../protocol/spec.ts';
import { convProduct } from './conv-loops.ts';
import type { ConvTiling } from './conv-tiling.ts';
import { forward } from './forward.ts';
import { INPUT_SHIFT } from './gather.ts';
import { type ConvGeometry, type ImageLayout, patchShape } from './image.ts';
import { NONE } from './op.ts';
import { quantShift } from './quantize.ts';

export interface ConvForwardParams extends ConvGeometry, ConvTiling {
  [key: string]: number | boolean | string | null;
  /** The layout of x (the first conv reads the pixels' chw, later ones a conv's or pool's hwc). */
  layout: ImageLayout;
  /** Output channels. */
  n: number;
  /** max |x| slot; NONE: x is the pixel operand (q ≪ 9 at shift INPUT_SHIFT). */
  xSlot: number;
  wSlot: number;
  /** Slot of max |h| for the next layer (NONE: skipped). */
  outSlot: number;
  act: Activation | null;
  residual: boolean;
}

let acc = new Int32Array(0);

export function convForward(
  p: ConvForwardParams,
  b: {
    x: Int32Array;
    w8: Int8Array;
    bias: Int32Array;
    hIn: Int32Array;
    maxes: Uint32Array;
    z: Int32Array;
    h: Int32Array;
  },
): void {
  const { rows } = patchShape(p);
  if (acc.length < rows * p.n) acc = new Int32Array(rows * p.n);
  const shift = p.xSlot === NONE ? INPUT_SHIFT : quantShift(b.maxes[p.xSlot]);
  convProduct(b.x, p.layout, p, shift, b.w8, p.n, acc);
  const { xSlot, wSlot, outSlot, act, residual } = p;
  forward(
    { rows, n: p.n, xSlot, wSlot, outSlot, act, residual },
    { acc, bias: b.bias, hIn: b.hIn, maxes: b.maxes, z: b.z, h: b.h },
  );
}
