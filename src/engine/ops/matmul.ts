/**
 * The three i8 × i8 → i32 matmul layouts of a training step, and the fused rescale(+bias) that
 * turns an accumulator into fixed point. Accumulation is exact (|q| ≤ 127, K ≤ 2^17), so any
 * summation order gives the same bits; these loops are ordered for speed on the CPU.
 * All matrices are row-major; shapes are explicit.
 */
import { rescale, shrRound } from './fixed.ts';
import type { I8Layout } from './op.ts';

/** y[yo .. yo+n) += a · v[vo .. vo+n), unrolled by four (the hot loop of both sparse layouts). */
function axpy(y: Int32Array, yo: number, v: Int8Array, vo: number, a: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    y[yo + i] += a * v[vo + i];
    y[yo + i + 1] += a * v[vo + i + 1];
    y[yo + i + 2] += a * v[vo + i + 2];
    y[yo + i + 3] += a * v[vo + i + 3];
  }
  for (; i < n; i++) y[yo + i] += a * v[vo + i];
}

/** acc[B][N] = x[B][K] · w[K][N]. Zero inputs are skipped (most MNIST pixels are 0). */
export function matmulXW(x: Int8Array, w: Int8Array, B: number, K: number, N: number, acc: Int32Array): void {
  acc.fill(0, 0, B * N);
  for (let b = 0; b < B; b++) {
    const xo = b * K;
    const ao = b * N;
    for (let k = 0; k < K; k++) {
      const xv = x[xo + k];
      if (xv === 0) continue;
      axpy(acc, ao, w, k * N, xv, N);
    }
  }
}

/**
 * g[K][N] = x[B][K]ᵀ · e[B][N] (weight gradient). Zero inputs are skipped; k is the outer loop so
 * each output row stays in cache while the batch streams past it.
 */
export function matmulXtE(x: Int8Array, e: Int8Array, B: number, K: number, N: number, g: Int32Array): void {
  g.fill(0, 0, K * N);
  for (let k = 0; k < K; k++) {
    const go = k * N;
    for (let b = 0; b < B; b++) {
      const xv = x[b * K + k];
      if (xv === 0) continue;
      axpy(g, go, e, b * N, xv, N);
    }
  }
}

/** h[B][K] = e[B][N] · w[K][N]ᵀ (error propagated to the layer input). */
export function matmulEWt(e: Int8Array, w: Int8Array, B: number, K: number, N: number, h: Int32Array): void {
  for (let b = 0; b < B; b++) {
    const eo = b * N;
    const ho = b * K;
    for (let k = 0; k < K; k++) {
      const wo = k * N;
      let s = 0;
      for (let n = 0; n < N; n++) s += e[eo + n] * w[wo + n];
      h[ho + k] = s;
    }
  }
}

/** out_i = rescale(acc_i, shift) for i < n (in place allowed); the loop is specialised per sign of shift. */
export function rescaleAll(acc: Int32Array, shift: number, out: Int32Array, n: number): void {
  if (shift > 0 && shift < 31) {
    const f = 2 ** shift;
    for (let i = 0; i < n; i++) {
      const v = acc[i] * f;
      out[i] = v > 0x7fffffff ? 0x7fffffff : Math.max(v, -0x80000000);
    }
  } else if (shift < 0 && shift > -32) {
    const k = -shift;
    for (let i = 0; i < n; i++) out[i] = (acc[i] >> k) + ((acc[i] >> (k - 1)) & 1);
  } else {
    for (let i = 0; i < n; i++) out[i] = rescale(acc[i], shift);
  }
}

/**
 * Forward epilogue: z[b][j] = rescale(acc[b][j], shift) + shrRound(bias[j], biasShift), the sum
 * wrapping in i32. Bias is Q24 and z is Q16, so biasShift = 8.
 */
export function rescaleAddBias(
  acc: Int32Array,
  B: number,
  N: number,
  shift: number,
  bias: Int32Array,
  biasShift: number,
  z: Int32Array,
): void {
  rescaleAll(acc, shift, z, B * N);
  for (let j = 0; j < N; j++) {
    const bj = shrRound(bias[j], biasShift);
    for (let b = 0; b < B; b++) z[b * N + j] = (z[b * N + j] + bj) | 0;
  }
}

/** out[j] = Σ_b x[b][j], wrapping in i32 (the bias gradient). */
export function columnSums(x: Int32Array, B: number, N: number, out: Int32Array): void {
  out.fill(0, 0, N);
  for (let b = 0; b < B; b++) {
    const o = b * N;
    for (let j = 0; j < N; j++) out[j] = (out[j] + x[o + j]) | 0;
  }
}

export interface MatmulParams {
  [key: string]: number | string;
  m: number;
  n: number;
  k: number;
  /** A (m×k) is the tensor a[m][k] read by rows, or a[k][m] read by columns (aᵀ). */
  a: I8Layout;
  /** B (k×n) is the tensor b[k][n] read by columns, or b[n][k] read by rows (bᵀ). */
  b: I8Layout;
}

/** Twin of matmul.wgsl: c[m][n] = A·B exactly, A and B picked from their tensors as the params say. */
export function matmul(p: MatmulParams, t: { a: Int8Array; b: Int8Array; c: Int32Array }): void {
  const { m, n, k } = p;
  if (p.a === 'rows' && p.b === 'cols') matmulXW(t.a, t.b, m, k, n, t.c);
  else if (p.a === 'cols' && p.b === 'cols') matmulXtE(t.a, t.b, k, m, n, t.c);
  else if (p.a === 'rows' && p.b === 'rows') matmulEWt(t.a, t.b, m, n, k, t.c);
  // aᵀ·bᵀ: no plan uses it; the plain loop keeps the twin total.
  else
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += t.a[q * m + i] * t.b[j * k + q];
        t.c[i * n + j] = s;
      }
}
