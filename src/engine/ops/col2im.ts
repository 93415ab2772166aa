/**
 * col2im: the adjoint of im2col (docs/ARITHMETIC.md, "Convolutional layers"). Given dP[M][K], the
 * gradient at the patch matrix (dP = e8 · w8ᵀ, exact i32), each input element (b, c, y, x) receives
 * the sum of the patch entries that were copies of it:
 *   dX[b][c][y][x] = Σ dP[(b, oy, ox)][(c, ky, kx)] over oy·s + ky − p = y, ox·s + kx − p = x
 * (wrapping i32, so any order gives the same bits). The kernel computes it as a gather per input
 * element; this twin scatters, which is the same integer sum.
 */
import {
  type ConvGeometry,
  checkGeometry,
  convPad,
  elementCount,
  type ImageLayout,
  imageIndex,
  patchShape,
} from './image.ts';

export interface Col2imParams extends ConvGeometry {
  [key: string]: number | boolean | string | null;
  /** The layout of the conv's input, and so of dX. */
  layout: ImageLayout;
}

/** The op twin: dX = col2im(dP). */
export function col2im(p: Col2imParams, b: { dP: Int32Array; dX: Int32Array }): void {
  col2imSum(b.dP, p.layout, p, b.dX);
}

/** dX (in `layout`, B·C·H·W elements) = col2im(dP), dP row-major [M][K] (M = B·Ho·Wo, K = C·k·k). */
export function col2imSum(dP: Int32Array, layout: ImageLayout, g: ConvGeometry, dX: Int32Array): void {
  checkGeometry(g);
  const { outH, outW, rows, cols } = patchShape(g);
  if (dP.length < rows * cols) throw new Error(`col2im: dP has ${dP.length} elements, needs ${rows * cols}`);
  const n = elementCount(g);
  if (dX.length < n) throw new Error(`col2im: dX has ${dX.length} elements, needs ${n}`);
  dX.fill(0, 0, n);
  const { channels: C, height: H, width: W, kernel: k, stride } = g;
  const pad = convPad(g);
  const sc = imageIndex(layout, g, 0, 1, 0, 0);
  const sy = imageIndex(layout, g, 0, 0, 1, 0);
  const sx = imageIndex(layout, g, 0, 0, 0, 1);
  let o = 0;
  for (let b = 0; b < g.batch; b++) {
    const base = b * C * H * W;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride + ky - pad;
            for (let kx = 0; kx < k; kx++, o++) {
              const ix = ox * stride + kx - pad;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              const i = base + c * sc + iy * sy + ix * sx;
              dX[i] = (dX[i] + dP[o]) | 0;
            }
          }
        }
      }
    }
  }
}
