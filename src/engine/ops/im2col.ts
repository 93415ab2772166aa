/**
 * im2col: the patch matrix of a 2-D convolution as int8 matmul operands (docs/ARITHMETIC.md,
 * "Convolutional layers"). Row (b, oy, ox), column (c, ky, kx) = (c·k + ky)·k + kx holds input
 * element (b, c, oy·stride + ky − pad, ox·stride + kx − pad) rounded half to even at `shift`
 * (zero outside the image: zero padding). Quantising element-wise before or after the gather gives
 * the same integers, so the RNE rounding of the layer input is fused in here (the kernel reads the
 * i32 activations directly). The conv is then patches · w8 with the existing int8 matmul.
 */
import { INPUT_SHIFT } from './gather.ts';
import {
  type ConvGeometry,
  checkGeometry,
  convPad,
  elementCount,
  type ImageLayout,
  imageIndex,
  patchShape,
} from './image.ts';
import { quantShift } from './quantize.ts';

/** clamp(round_half_even(v / 2^s), −127, 127): quantize.ts's RNE rounding of one element at shift s. */
export function roundHalfEvenI8(v: number, s: number): number {
  let q = v;
  if (s > 0) {
    const fl = v >> s;
    const r = v & (2 ** s - 1);
    const half = 2 ** (s - 1);
    q = fl + (r > half || (r === half && (fl & 1) === 1) ? 1 : 0);
  }
  return q > 127 ? 127 : Math.max(q, -127);
}

const NONE = 0xffffffff;

export interface Im2colParams extends ConvGeometry {
  [key: string]: number | boolean | string | null;
  /** The input's layout (the first conv reads the dataset's chw, later ones the hwc of a conv). */
  layout: ImageLayout;
  /** The max-abs slot of the input; NONE: the input is the pixel operand (q ≪ 9, shift INPUT_SHIFT). */
  xSlot: number;
}

/** The op twin: patches (i8 [M][K]) from x (i32) at the shift of maxes[xSlot] (NONE: INPUT_SHIFT). */
export function im2col(p: Im2colParams, b: { x: Int32Array; maxes: Uint32Array; patches: Int8Array }): void {
  const shift = p.xSlot === NONE ? INPUT_SHIFT : quantShift(b.maxes[p.xSlot]);
  im2colPatches(b.x, p.layout, p, shift, b.patches);
}

let scratch = new Int8Array(0);

/**
 * patches[M][K] (row-major, M = B·Ho·Wo, K = C·k·k) from x in `layout`, each element rounded half to
 * even at `shift` (0 ≤ shift ≤ 31). The operand's scale is then shift + the source's (Q16: value
 * q · 2^(shift − 16)).
 */
export function im2colPatches(
  x: Int32Array,
  layout: ImageLayout,
  g: ConvGeometry,
  shift: number,
  patches: Int8Array,
): void {
  checkGeometry(g);
  if (!Number.isInteger(shift) || shift < 0 || shift > 31)
    throw new Error(`im2col: shift ${shift} out of range`);
  const n = elementCount(g);
  if (x.length < n) throw new Error(`im2col: input has ${x.length} elements, the geometry needs ${n}`);
  const { outH, outW, rows, cols } = patchShape(g);
  if (patches.length < rows * cols) throw new Error(`im2col: patches need ${rows * cols} elements`);
  if (scratch.length < n) scratch = new Int8Array(n);
  for (let i = 0; i < n; i++) scratch[i] = roundHalfEvenI8(x[i], shift);

  const { channels: C, height: H, width: W, kernel: k, stride } = g;
  const pad = convPad(g);
  // Element strides of (c, y, x) in the layout; b's stride is C·H·W in both.
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
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride + kx - pad;
              const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
              patches[o++] = inside ? scratch[base + c * sc + iy * sy + ix * sx] : 0;
            }
          }
        }
      }
    }
  }
}
