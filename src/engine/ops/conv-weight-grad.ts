/**
 * Twin of conv-weight-grad.wgsl: a conv layer's weight and bias gradients as one implicit GEMM,
 * ADDED into `acc` (wrapping i32, so the kernel may split the sum over rows between workgroups and
 * add each part atomically: any order gives the same integers):
 *   acc[k][n]    += Σ_m P8[m][k] · e8[m][n]     P8 = im2col(x) at the RNE shift sx, never in memory
 *   acc[K·N + n] += Σ_m gz[m][n]                (the bias gradient)
 * sgd with `accumulated` reads both and zeroes them for the next step.
 */
import { convProductTransposed } from './conv-loops.ts';
import type { ConvTiling } from './conv-tiling.ts';
import { INPUT_SHIFT } from './gather.ts';
import { type ConvGeometry, type ImageLayout, patchShape } from './image.ts';
import { NONE } from './op.ts';
import { quantShift } from './quantize.ts';

export interface ConvWeightGradParams extends ConvGeometry, ConvTiling {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  /** Output channels. */
  n: number;
  /** max |x| slot; NONE: the pixel operand (INPUT_SHIFT). */
  xSlot: number;
  /** Packed words of rows (4 rows each) per split of the sum; each split is added on its own. */
  splitWords: number;
}

export function convWeightGrad(
  p: ConvWeightGradParams,
  b: { x: Int32Array; maxes: Uint32Array; e8: Int8Array; gz: Int32Array; acc: Int32Array },
): void {
  const { rows: M, cols: K } = patchShape(p);
  const N = p.n;
  const shift = p.xSlot === NONE ? INPUT_SHIFT : quantShift(b.maxes[p.xSlot]);
  convProductTransposed(b.x, p.layout, p, shift, b.e8, N, b.acc);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) b.acc[K * N + n] = (b.acc[K * N + n] + b.gz[m * N + n]) | 0;
}
