import { describe, expect, it } from 'vitest';
import { mix, permutation, rand, rngKey } from './rng.ts';

describe('hash RNG', () => {
  it('matches pinned values (any change here changes every digest)', () => {
    expect([mix(0), mix(1), mix(0xffffffff), mix(0x9e3779b9)]).toMatchSnapshot();
    expect(rngKey(1, 0, 1)).toMatchSnapshot();
    expect([0, 1, 2, 1000].map((i) => rand(rngKey(42, 7, 0x301), i))).toMatchSnapshot();
  });

  it('is roughly uniform', () => {
    const key = rngKey(5, 0, 2);
    const bins = new Array(16).fill(0);
    for (let i = 0; i < 160000; i++) bins[rand(key, i) >>> 28]++;
    for (const b of bins) expect(Math.abs(b - 10000)).toBeLessThan(500);
  });

  it('permutation is a permutation sorted by (rand, index)', () => {
    const key = rngKey(9, 1, 2);
    const p = permutation(key, 5000);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    for (let i = 1; i < p.length; i++) {
      const a = rand(key, p[i - 1]);
      const b = rand(key, p[i]);
      expect(a < b || (a === b && p[i - 1] < p[i])).toBe(true);
    }
  });
});
