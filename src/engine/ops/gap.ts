/**
 * Twin of gap.wgsl: global average pool [B][C][H][W] → [B][C] (docs/ARITHMETIC.md, "Global average
 * pool"). y[b][c] = round_half_even(S / n), S = Σ over the n = H·W pixels of x[b][c] taken exactly
 * (|S| < 2^47: no wrapping), n ≤ 2^16. max |y| is folded into maxes[outSlot] (NONE: skipped).
 */
import { type ImageLayout, type ImageShape, imageIndex } from './image.ts';
import { maxAbs } from './quantize.ts';

const NONE = 0xffffffff;
/** Largest H·W the kernels' 64-bit by 16-bit division supports (spec v2 allows at most 2^16 values per example). */
export const MAX_POOL_PIXELS = 1 << 16;

export interface GapParams extends ImageShape {
  [key: string]: number | boolean | string | null;
  layout: ImageLayout;
  outSlot: number;
}

/** round_half_even(s / n) for an integer |s| < 2^53 and 1 ≤ n ≤ 2^21, exactly (f64 with a remainder fix). */
export function divRoundHalfEven(s: number, n: number): number {
  let q = Math.floor(s / n);
  let r = s - q * n;
  if (r < 0) {
    q -= 1;
    r += n;
  } else if (r >= n) {
    q += 1;
    r -= n;
  }
  const up = 2 * r > n || (2 * r === n && Math.abs(q) % 2 === 1);
  return up ? q + 1 : q;
}

export function checkPoolPixels(s: ImageShape): void {
  const n = s.height * s.width;
  if (n > MAX_POOL_PIXELS) throw new Error(`gap: ${n} pixels per channel, at most ${MAX_POOL_PIXELS}`);
}

export function gap(p: GapParams, b: { x: Int32Array; maxes: Uint32Array; y: Int32Array }): void {
  checkPoolPixels(p);
  const n = p.height * p.width;
  for (let e = 0; e < p.batch; e++)
    for (let c = 0; c < p.channels; c++) {
      let sum = 0;
      for (let y = 0; y < p.height; y++)
        for (let x = 0; x < p.width; x++) sum += b.x[imageIndex(p.layout, p, e, c, y, x)];
      b.y[e * p.channels + c] = divRoundHalfEven(sum, n);
    }
  if (p.outSlot === NONE) return;
  const m = maxAbs(b.y, p.batch * p.channels);
  if (m > b.maxes[p.outSlot]) b.maxes[p.outSlot] = m;
}
