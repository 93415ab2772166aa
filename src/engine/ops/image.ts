/**
 * Shapes and memory layouts of image tensors for the conv ops (docs/ARITHMETIC.md, "Convolutional
 * layers"). An image batch is B examples of C channels of H×W pixels, stored either
 *   'chw': [B][C][H][W] (channel-major: the dataset's features, and the flatten order), or
 *   'hwc': [B][H][W][C] (pixel-major: what the conv matmul writes, rows (b, y, x) and columns c).
 * The ops read and write either, so no layout op is needed except at flatten (see transpose.ts).
 */

export type ImageLayout = 'chw' | 'hwc';

export interface ImageShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
}

/** A 2-D convolution's geometry: zero padding ⌊kernel/2⌋ on each side (DESIGN, spec v2). */
export interface ConvGeometry extends ImageShape {
  kernel: number;
  stride: number;
}

export function elementCount(s: ImageShape): number {
  return s.batch * s.channels * s.height * s.width;
}

/** Index of element (b, c, y, x) in `layout`. */
export function imageIndex(layout: ImageLayout, s: ImageShape, b: number, c: number, y: number, x: number) {
  return layout === 'chw'
    ? ((b * s.channels + c) * s.height + y) * s.width + x
    : ((b * s.height + y) * s.width + x) * s.channels + c;
}

export function convPad(g: ConvGeometry): number {
  return Math.floor(g.kernel / 2);
}

/** Output size of one axis: ⌊(n + 2·pad − kernel) / stride⌋ + 1. */
export function convOutSize(n: number, kernel: number, stride: number): number {
  return Math.floor((n + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;
}

/** The patch matrix of a convolution: M = B·Ho·Wo rows (b, oy, ox), K = C·k·k columns (c, ky, kx). */
export function patchShape(g: ConvGeometry) {
  const outH = convOutSize(g.height, g.kernel, g.stride);
  const outW = convOutSize(g.width, g.kernel, g.stride);
  return { outH, outW, rows: g.batch * outH * outW, cols: g.channels * g.kernel * g.kernel };
}

/** Throws on a geometry the conv ops do not support (the spec's limits plus what the kernels assume). */
export function checkGeometry(g: ConvGeometry): void {
  const { batch, channels, height, width, kernel, stride } = g;
  for (const [name, v] of Object.entries({ batch, channels, height, width, kernel, stride })) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`conv geometry: ${name} must be a positive integer, is ${v}`);
  }
  if (![1, 3, 5].includes(g.kernel))
    throw new Error(`conv geometry: kernel must be 1, 3 or 5, is ${g.kernel}`);
  if (![1, 2].includes(g.stride)) throw new Error(`conv geometry: stride must be 1 or 2, is ${g.stride}`);
}

/** The u32 code of a layout in the kernels' params (`channels_last`). */
export function layoutCode(layout: ImageLayout): number {
  return layout === 'hwc' ? 1 : 0;
}
