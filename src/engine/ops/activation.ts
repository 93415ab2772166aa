/**
 * Integer activations on Q16 pre-activations and their derivatives applied to Q24 errors
 * (docs/ARITHMETIC.md). GELU is I-BERT's i-GELU: z/2 · (1 + L(z/√2)),
 * L(u) = sign(u) · (a · (min(|u|, −b) + b)² + 1), a = −0.2888, b = −1.769.
 */
import type { Activation } from '../../protocol/spec.ts';
import { mulShr, ONE_Q16, shrRound } from './fixed.ts';

export const GELU_INV_SQRT2_Q16 = 46341; // 1/√2
export const GELU_B_Q16 = 115933; // −b = 1.769
export const GELU_A_Q16 = -18927; // a = −0.2888

/** i-GELU's L(u) for u in Q16, and the clipped offset t = min(|u|, −b) + b (≤ 0) it came from. */
function geluL(u: number): { L: number; t: number } {
  const au = u < 0 ? -u : u;
  const t = Math.min(au, GELU_B_Q16) - GELU_B_Q16;
  const mag = mulShr(mulShr(t, t, 16), GELU_A_Q16, 16) + ONE_Q16;
  return { L: u > 0 ? mag : u < 0 ? -mag : 0, t };
}

/** i-GELU(z), Q16 → Q16. */
export function geluQ16(z: number): number {
  const { L } = geluL(mulShr(z, GELU_INV_SQRT2_Q16, 16));
  return mulShr(z, ONE_Q16 + L, 17);
}

/** d i-GELU / dz in Q16: (1 + L(u))/2 + u · L'(u)/2 with u = z/√2 and L'(u) = 2a·t. */
export function geluGradQ16(z: number): number {
  const u = mulShr(z, GELU_INV_SQRT2_Q16, 16);
  const { L, t } = geluL(u);
  const dL = mulShr(t, 2 * GELU_A_Q16, 16); // ≥ 0
  return shrRound(ONE_Q16 + L, 1) + mulShr(u, dL, 17);
}

/** h_i = act(z_i) for i < n, Q16 → Q16. */
export function activate(act: Activation, z: Int32Array, h: Int32Array, n: number): void {
  switch (act) {
    case 'relu':
      for (let i = 0; i < n; i++) h[i] = Math.max(z[i], 0);
      return;
    case 'leaky_relu':
      for (let i = 0; i < n; i++) h[i] = z[i] >= 0 ? z[i] : z[i] >> 3;
      return;
    case 'hardtanh':
      for (let i = 0; i < n; i++) h[i] = z[i] > ONE_Q16 ? ONE_Q16 : Math.max(z[i], -ONE_Q16);
      return;
    case 'gelu':
      for (let i = 0; i < n; i++) h[i] = geluQ16(z[i]);
      return;
  }
}

/** gz_i = g_i ⊙ act'(z_i) for i < n: g and gz Q24, z Q16 (in place on g allowed). */
export function activationBackward(
  act: Activation,
  z: Int32Array,
  g: Int32Array,
  gz: Int32Array,
  n: number,
): void {
  switch (act) {
    case 'relu':
      for (let i = 0; i < n; i++) gz[i] = z[i] > 0 ? g[i] : 0;
      return;
    case 'leaky_relu':
      for (let i = 0; i < n; i++) gz[i] = z[i] > 0 ? g[i] : shrRound(g[i], 3);
      return;
    case 'hardtanh':
      for (let i = 0; i < n; i++) gz[i] = z[i] < ONE_Q16 && z[i] > -ONE_Q16 ? g[i] : 0;
      return;
    case 'gelu':
      for (let i = 0; i < n; i++) gz[i] = mulShr(g[i], geluGradQ16(z[i]), 16);
      return;
  }
}
