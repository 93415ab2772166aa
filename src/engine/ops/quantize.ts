/**
 * Quantisation of an i32 tensor to i8 operands with a per-tensor power-of-two shift
 * (docs/ARITHMETIC.md, "Quantisation to 8 bits"). The shift comes from an exact integer max-abs,
 * so it is identical on every device; the operand value is q · 2^s in the source's fixed point.
 */
import { bitlen } from './fixed.ts';
import { rand, rngKey } from './rng.ts';

/** max |x_i| as a u32 (so |−2^31| = 2^31). */
export function maxAbs(x: Int32Array, n = x.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const a = v < 0 ? -v : v;
    if (a > m) m = a;
  }
  return m;
}

/** The shift s for a max-abs m: the least s ≥ 0 with m >> s ≤ 127. */
export function quantShift(m: number): number {
  return Math.max(0, bitlen(m) - 7);
}

/** Round-half-even quantisation; writes q and returns the shift. */
export function quantizeRNE(x: Int32Array, q: Int8Array, n = x.length): number {
  const s = quantShift(maxAbs(x, n));
  roundHalfEven(x, q, n, s);
  return s;
}

/** q_i = clamp(round-half-even(x_i / 2^s), −127, 127) for i < n. */
export function roundHalfEven(x: Int32Array, q: Int8Array, n: number, s: number): void {
  if (s === 0) {
    for (let i = 0; i < n; i++) q[i] = clamp127(x[i]);
    return;
  }
  const half = 2 ** (s - 1);
  const mask = 2 ** s - 1;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const fl = v >> s; // floor
    const r = v & mask; // v − fl·2^s, in [0, 2^s)
    const up = r > half || (r === half && (fl & 1) === 1) ? 1 : 0;
    q[i] = clamp127(fl + up);
  }
}

/**
 * Stochastic rounding: q_i = clamp(⌊(x_i + r_i) / 2^s⌋, −127, 127), r_i = rand(key, i) & (2^s − 1),
 * computed as (x_i >> s) + (((x_i & (2^s − 1)) + r_i) >> s) so nothing overflows. Returns the shift.
 */
export function quantizeStochastic(x: Int32Array, q: Int8Array, key: number, n = x.length): number {
  const s = quantShift(maxAbs(x, n));
  roundStochastic(x, q, n, s, key);
  return s;
}

/** The stochastic rounding of quantizeStochastic with a given shift. */
export function roundStochastic(x: Int32Array, q: Int8Array, n: number, s: number, key: number): void {
  if (s === 0) {
    for (let i = 0; i < n; i++) q[i] = clamp127(x[i]);
    return;
  }
  const mask = s >= 32 ? -1 : 2 ** s - 1;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const r = rand(key, i) & mask;
    q[i] = clamp127((v >> s) + (((v & mask) + r) >>> s));
  }
}

export interface QuantizeParams {
  [key: string]: number | null;
  rows: number;
  cols: number;
  /** maxes[slot] holds max |x| (filled by maxabs or a fused epilogue earlier in the sequence). */
  slot: number;
  /** RNG tensor id for stochastic rounding (keyed by the step in state[0]); null: round half to even. */
  tensor: number | null;
  seed: number;
}

/** Twin of quantize.wgsl: x[rows][cols] → int8 with the shift of maxes[slot]. */
export function quantize(
  p: QuantizeParams,
  b: { x: Int32Array; maxes: Uint32Array; state: Uint32Array; out: Int8Array },
): void {
  const n = p.rows * p.cols;
  const s = quantShift(b.maxes[p.slot]);
  if (p.tensor === null) roundHalfEven(b.x, b.out, n, s);
  else roundStochastic(b.x, b.out, n, s, rngKey(p.seed, b.state[0], p.tensor));
}

function clamp127(v: number): number {
  return v > 127 ? 127 : Math.max(v, -127);
}
