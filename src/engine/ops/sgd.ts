/**
 * SGD with momentum and L2 weight decay on Q24 parameters (docs/ARITHMETIC.md), in place:
 *   g' = g + mulShr(w, weightDecayQ24, 24);  v = mulShr(v, momentumQ16, 16) + g';
 *   w  = w − mulShr(v, learningRateQ16, 16)        (additions wrap in i32)
 */
import { mulShr } from './fixed.ts';

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
