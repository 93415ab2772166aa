/**
 * The implicit-GEMM conv products on the CPU, for the twins of conv-forward and conv-weight-grad:
 * the patch matrix P8 = im2col(x) (im2col.ts) is never built; each product walks the output
 * pixels and the kernel taps inside the image, reading the input quantised once (RNE at `shift`).
 * Zero operands are skipped (most MNIST pixels are 0). The same integers as im2col then the
 * matmul: the products are exact and the sums wrap, so the order does not matter.
 */
import { roundHalfEvenI8 } from './im2col.ts';
import {
  type ConvGeometry,
  checkGeometry,
  convPad,
  elementCount,
  type ImageLayout,
  imageStrides,
  patchShape,
} from './image.ts';

let quantized = new Int8Array(0);

function quantizeInput(x: Int32Array, n: number, shift: number): Int8Array {
  if (quantized.length < n) quantized = new Int8Array(n);
  for (let i = 0; i < n; i++) quantized[i] = roundHalfEvenI8(x[i], shift);
  return quantized;
}

/** y[yo .. yo+n) += a · v[vo .. vo+n), unrolled by four (an Int32Array store wraps, as i32 addition). */
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

/**
 * For every nonzero patch entry P8[m][k] = v: out[row] += v · operand[col], N wide, where
 * (row, col) = (m, k) (transposed: (k, m)). The loops are im2col's (im2col.ts), reading the input
 * quantised once instead of writing the patch matrix.
 */
function patchProduct(
  x: Int32Array,
  layout: ImageLayout,
  g: ConvGeometry,
  shift: number,
  operand: Int8Array,
  N: number,
  out: Int32Array,
  transposed: boolean,
): void {
  checkGeometry(g);
  const q = quantizeInput(x, elementCount(g), shift);
  const { outH, outW } = patchShape(g);
  const { sb, sc, sy, sx } = imageStrides(layout, g);
  const { channels: C, height: H, width: W, kernel: k, stride } = g;
  const pad = convPad(g);
  const kk = k * k;
  let m = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++, m++) {
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * stride + ky - pad;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * stride + kx - pad;
            if (ix < 0 || ix >= W) continue;
            const pix = b * sb + iy * sy + ix * sx;
            for (let c = 0, col = ky * k + kx; c < C; c++, col += kk) {
              const v = q[pix + c * sc];
              if (v === 0) continue;
              if (transposed) axpy(out, col * N, operand, m * N, v, N);
              else axpy(out, m * N, operand, col * N, v, N);
            }
          }
        }
      }
    }
  }
}

/** acc[M][N] = P8 · w8 (w8 [K][N] row-major). */
export function convProduct(
  x: Int32Array,
  layout: ImageLayout,
  g: ConvGeometry,
  shift: number,
  w8: Int8Array,
  N: number,
  acc: Int32Array,
): void {
  acc.fill(0, 0, patchShape(g).rows * N);
  patchProduct(x, layout, g, shift, w8, N, acc, false);
}

/** acc[K][N] += P8ᵀ · e8 (e8 [M][N] row-major), wrapping. */
export function convProductTransposed(
  x: Int32Array,
  layout: ImageLayout,
  g: ConvGeometry,
  shift: number,
  e8: Int8Array,
  N: number,
  acc: Int32Array,
): void {
  patchProduct(x, layout, g, shift, e8, N, acc, true);
}
