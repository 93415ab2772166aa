/**
 * Twin of conv-input-grad.wgsl: a conv layer's input gradient as one implicit GEMM (a transposed
 * convolution of the int8 operands) with the backward epilogue fused:
 *   dX = col2im(e8 · w8ᵀ)    (exact i32: per input element the sum over the taps that read it)
 *   gh = rescale(dX, se + sw − 24) (+ ghRes);  gz = gh ⊙ act′(z);  max |gz| → maxes[gzSlot]
 * The same integers as the e·Wᵀ matmul then col2im-backward: this twin composes exactly those
 * (the kernel never writes the [M][K] patch gradient).
 */
import type { Activation } from '../../protocol/spec.ts';
import { col2imBackward } from './col2im-backward.ts';
import type { ConvTiling } from './conv-tiling.ts';
import { type ConvGeometry, type ImageLayout, patchShape } from './image.ts';
import { matmulEWt } from './matmul.ts';

export interface ConvInputGradParams extends ConvGeometry, ConvTiling {
  [key: string]: number | boolean | string | null;
  /** The layout of the conv's input, and so of z, ghRes, ghOut and gz. */
  layout: ImageLayout;
  /** Output channels of the conv (the width of e8). */
  n: number;
  eSlot: number;
  wSlot: number;
  gzSlot: number;
  /** act′ of the layer below (null: identity, e.g. when a pool sits between). */
  act: Activation | null;
  residual: boolean;
}

let dP = new Int32Array(0);

export function convInputGrad(
  p: ConvInputGradParams,
  b: {
    e8: Int8Array;
    w8: Int8Array;
    z: Int32Array;
    ghRes: Int32Array;
    maxes: Uint32Array;
    ghOut: Int32Array;
    gz: Int32Array;
  },
): void {
  const { rows, cols } = patchShape(p);
  if (dP.length < rows * cols) dP = new Int32Array(rows * cols);
  matmulEWt(b.e8, b.w8, rows, cols, p.n, dP);
  col2imBackward(p, { dP, z: b.z, ghRes: b.ghRes, maxes: b.maxes, ghOut: b.ghOut, gz: b.gz });
}
