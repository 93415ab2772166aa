/**
 * A counter-based integer hash RNG for the search strategies.
 *
 * Strategies must be deterministic for a seed and resumable from JSON, so the generator's whole
 * state is two integers (seed, counter): draw i is `mix(key ^ mix(i))` with lowbias32 as the mixer
 * (the same mixer as the training arithmetic, docs/ARITHMETIC.md), never Math.random.
 */

import { mix } from '../engine/ops/rng.ts';

/** lowbias32, the training arithmetic's mixer (one definition for the whole project). */
export const mix32 = mix;

export interface RngState {
  seed: number;
  counter: number;
}

export class HashRng {
  private readonly key: number;
  readonly seed: number;
  counter: number;

  constructor(seed: number, counter = 0) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff)
      throw new Error(`seed must be a u32, got ${seed}`);
    this.seed = seed;
    this.counter = counter;
    // A different stream tag from the trainer's keys, so search draws never alias training draws.
    this.key = mix32(mix32(seed ^ 0x5eed_5eed) ^ 0x4e41_5321);
  }

  static restore(state: RngState): HashRng {
    return new HashRng(state.seed, state.counter);
  }

  state(): RngState {
    return { seed: this.seed, counter: this.counter };
  }

  /** The next u32. */
  nextU32(): number {
    const value = mix32(this.key ^ mix32(this.counter));
    this.counter += 1;
    return value;
  }

  /** Uniform integer in [0, n) for 1 ≤ n ≤ 2^32, unbiased by rejection. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new Error(`int(n) needs 1 ≤ n ≤ 2^32, got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)];
  }

  /** True with probability num/den. */
  chance(num: number, den: number): boolean {
    return this.int(den) < num;
  }

  /** k distinct indices from [0, n), in draw order (partial Fisher–Yates). */
  sampleIndices(n: number, k: number): number[] {
    const idx = Array.from({ length: n }, (_, i) => i);
    const count = Math.min(k, n);
    for (let i = 0; i < count; i++) {
      const j = i + this.int(n - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, count);
  }
}
