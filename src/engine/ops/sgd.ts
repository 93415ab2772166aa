/**
 * SGD with momentum and L2 weight decay on Q24 parameters (docs/ARITHMETIC.md), in place:
 *   g' = g + mulShr(w, weightDecayQ24, 24);  v = mulShr(v, momentumQ16, 16) + g';
 *   w  = w − mulShr(v, learningRateQ16, 16)        (additions wrap in i32)
 */
import { mulShr } from './fixed.ts';
import { operandShift } from './forward.ts';
import { columnSums, rescaleAll } from './matmul.ts';
import { maxAbs } from './quantize.ts';

export function sgdStep(
  w: Int32Array,
  v: Int32Array,
  g: Int32Array,
  n: number,
  learningRateQ16: number,
  momentumQ16: number,
  weightDecayQ24: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = weightDecayQ24 === 0 ? g[i] : (g[i] + mulShr(w[i], weightDecayQ24, 24)) | 0;
    const vi = (mulShr(v[i], momentumQ16, 16) + gi) | 0;
    v[i] = vi;
    w[i] = (w[i] - mulShr(vi, learningRateQ16, 16)) | 0;
  }
}

/** The weight gradient, reused between calls (the twin runs every step). */
let gradScratch = new Int32Array(0);
function scratch(n: number): Int32Array {
  if (gradScratch.length < n) gradScratch = new Int32Array(n);
  return gradScratch;
}

export interface SgdParams {
  [key: string]: number | boolean;
  k: number;
  n: number;
  rows: number;
  xSlot: number;
  eSlot: number;
  learningRateQ16: number;
  momentumQ16: number;
  weightDecayQ24: number;
  wNextSlot: number;
  /**
   * false: acc holds x8ᵀ·e8 [K][N] and the bias gradient is the column sums of gz.
   * true: a conv-weight-grad op added both into acc ([K][N] then [N]); they are read and zeroed
   * (ready for the next step's sums), and gz is not read.
   */
  accumulated: boolean;
}

/**
 * Twin of sgd.wgsl, one layer's gradient and update:
 *   weights: g = rescale(acc, sx + se − 16) (acc = x8ᵀ·e8, Q24);  bias j: g = Σ_b gz[b][j] (wrapping)
 *   (accumulated: bias j: g = acc[K·N + j], then acc[0 .. K·N + N) = 0)
 * then sgdStep on W and b; max |W| of the updated weights is folded into maxes[wNextSlot].
 */
export function sgd(
  p: SgdParams,
  b: {
    acc: Int32Array;
    gz: Int32Array;
    maxes: Uint32Array;
    w: Int32Array;
    vw: Int32Array;
    bias: Int32Array;
    vb: Int32Array;
  },
): void {
  const { k, n, learningRateQ16: lr, momentumQ16: mom, weightDecayQ24: wd } = p;
  const g = scratch(k * n);
  rescaleAll(b.acc, operandShift(b.maxes, p.xSlot) + operandShift(b.maxes, p.eSlot) - 16, g, k * n);
  sgdStep(b.w, b.vw, g, k * n, lr, mom, wd);
  const gb = new Int32Array(n);
  if (p.accumulated) {
    gb.set(b.acc.subarray(k * n, k * n + n));
    b.acc.fill(0, 0, k * n + n);
  } else columnSums(b.gz, p.rows, n, gb);
  sgdStep(b.bias, b.vb, gb, n, lr, mom, wd);
  const m = maxAbs(b.w, k * n);
  if (m > b.maxes[p.wNextSlot]) b.maxes[p.wNextSlot] = m;
}
