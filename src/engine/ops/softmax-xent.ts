/**
 * Integer softmax cross-entropy over rows of Q16 logits (docs/ARITHMETIC.md): per-example loss
 * (Q16), correctness, and the Q24 gradient of the batch-mean loss.
 */
import { divRound, exp2Q15, log2Q16, mulShr, ONE_Q16 } from './fixed.ts';

export const LOG2E_Q16 = 94548; // log2(e)
export const LN2_Q16 = 45426; // ln(2)
/** Logits further than this below the row max contribute 2^(−46) or less: clamp them. */
export const SOFTMAX_FLOOR_Q16 = 32 * ONE_Q16;

export interface XentTotals {
  /** Σ per-example loss, Q16 (exact integer in a JS number; < 2^53 for any practical count). */
  lossQ16: number;
  correct: number;
}

/**
 * Rows b < B of z[B][C] with labels[labelOffset + b]. When `gz` is given, writes
 * gz[b][j] = divRound(p_j · 2^8 − (j = y ? 2^24 : 0), gradDivisor) (Q24).
 */
export function softmaxXent(
  z: Int32Array,
  labels: ArrayLike<number>,
  B: number,
  C: number,
  gz: Int32Array | null,
  gradDivisor: number,
): XentTotals {
  const e = new Uint32Array(C);
  let lossQ16 = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const o = b * C;
    const y = labels[b];
    let arg = 0;
    for (let j = 1; j < C; j++) if (z[o + j] > z[o + arg]) arg = j;
    if (arg === y) correct++;
    const zmax = z[o + arg];
    let S = 0;
    let dy = 0;
    for (let j = 0; j < C; j++) {
      const gap = zmax - z[o + j]; // exact in f64; as u32 in WGSL
      const d = -Math.min(gap, SOFTMAX_FLOOR_Q16);
      if (j === y) dy = d;
      e[j] = exp2Q15(mulShr(d, LOG2E_Q16, 16));
      S += e[j];
    }
    lossQ16 += mulShr(log2Q16(S) - 15 * ONE_Q16, LN2_Q16, 16) - dy;
    if (gz) {
      for (let j = 0; j < C; j++) {
        const p = Math.floor((e[j] * ONE_Q16) / S); // exact: e·2^16 ≤ 2^31, as u32 division
        gz[o + j] = divRound(p * 256 - (j === y ? 1 << 24 : 0), gradDivisor);
      }
    }
  }
  return { lossQ16, correct };
}

export interface SoftmaxXentParams {
  [key: string]: number | boolean;
  rows: number;
  classes: number;
  /** The batch size B: gz is the gradient of the batch-mean loss. */
  gradDivisor: number;
  base: number;
  gzSlot: number;
  /** Write gz and fold max |gz| into maxes[gzSlot] (training), or only the stats (validation). */
  train: boolean;
  /** Stats rows start at base + state[1]·rows (training), at base otherwise. */
  perStep: boolean;
  /** Rows the stats buffer holds (not sent to the kernel). */
  statsRows: number;
}

/**
 * Twin of softmax-xent.wgsl: per row b, stats[2(first + b)] = loss (Q16) and stats[2(first + b) + 1]
 * = correct (0/1); when train, gz as softmaxXent and max |gz| folded into maxes[gzSlot].
 */
export function softmaxXentRows(
  p: SoftmaxXentParams,
  b: {
    logits: Int32Array;
    y: Uint32Array;
    state: Uint32Array;
    maxes: Uint32Array;
    gz: Int32Array;
    stats: Int32Array;
  },
): void {
  const { rows, classes: C } = p;
  const first = p.base + (p.perStep ? b.state[1] * rows : 0);
  const labels = new Uint32Array(1);
  const gzRow = p.train ? new Int32Array(C) : null;
  let m = 0;
  for (let r = 0; r < rows; r++) {
    labels[0] = b.y[r];
    const totals = softmaxXent(b.logits.subarray(r * C, (r + 1) * C), labels, 1, C, gzRow, p.gradDivisor);
    b.stats[2 * (first + r)] = totals.lossQ16;
    b.stats[2 * (first + r) + 1] = totals.correct;
    if (gzRow) {
      b.gz.set(gzRow, r * C);
      for (const g of gzRow) m = Math.max(m, Math.abs(g));
    }
  }
  if (p.train && m > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m;
}
