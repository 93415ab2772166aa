/**
 * Twin of maxabs.wgsl: max |x_i| (as u32, |−2^31| = 2^31) of an i32 tensor, folded into a slot of
 * the `maxes` buffer, from which quantize and the fused epilogues take their shifts.
 */
import { maxAbs } from './quantize.ts';

export interface MaxabsParams {
  [key: string]: number;
  n: number;
  slot: number;
}

export function maxabs(p: MaxabsParams, b: { x: Int32Array; maxes: Uint32Array }): void {
  const m = maxAbs(b.x, p.n);
  if (m > b.maxes[p.slot]) b.maxes[p.slot] = m;
}
