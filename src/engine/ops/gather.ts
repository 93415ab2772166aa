/**
 * Twin of gather.wgsl: the first layer's int8 operand of a batch, x8[b][f] = pixel(order[i], f) >> 1
 * (shift 9, value ≈ p/256), and the batch labels y[b], with i = base + state[1]·rows + b when
 * perStep (training: state[1] is the step within the uploaded batch range), base + b otherwise.
 * When widen (a residual first layer), also the input as Q16: xWide = (pixel >> 1) << 9.
 */

/** Input pixel p becomes the operand p >> 1 with shift 9 (value (p >> 1) / 128 / 2). */
export const INPUT_SHIFT = 9;

export interface GatherParams {
  [key: string]: number | boolean;
  rows: number;
  features: number;
  base: number;
  perStep: boolean;
  widen: boolean;
  /** Examples in the dataset (sizes pixels and labels; not sent to the kernel). */
  count: number;
  /** perStep: batches of `rows` the order buffer holds after `base` (sizes it; not sent). */
  steps: number;
}

export function gather(
  p: GatherParams,
  b: {
    pixels: Uint8Array;
    labels: Uint8Array;
    order: Uint32Array;
    state: Uint32Array;
    x8: Int8Array;
    y: Uint32Array;
    xWide: Int32Array;
  },
): void {
  const { rows, features: F } = p;
  const first = p.base + (p.perStep ? b.state[1] * rows : 0);
  for (let r = 0; r < rows; r++) {
    const example = b.order[first + r];
    const src = example * F;
    for (let f = 0; f < F; f++) b.x8[r * F + f] = b.pixels[src + f] >> 1;
    b.y[r] = b.labels[example];
  }
  // The operand q stands for q / 2^7, so its Q16 value is q << 9.
  if (p.widen) for (let i = 0; i < rows * F; i++) b.xWide[i] = b.x8[i] << (16 - 7);
}
