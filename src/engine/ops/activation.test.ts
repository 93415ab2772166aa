import { describe, expect, it } from 'vitest';
import { activate, activationBackward, geluGradQ16, geluQ16 } from './activation.ts';
import { ONE_Q16 } from './fixed.ts';

/** I-BERT's i-GELU in float64: the function the integer GELU approximates bit by bit. */
function iGelu(x: number): number {
  const u = x / Math.SQRT2;
  const t = Math.min(Math.abs(u), 1.769) - 1.769;
  const L = Math.sign(u) * (-0.2888 * t * t + 1);
  return (x / 2) * (1 + L);
}

function gelu(x: number): number {
  // erf via a high-accuracy series (|x| small) / continued fraction is overkill: tanh form is within 1e-3.
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

const grid = Array.from({ length: 4001 }, (_, i) => Math.round((i - 2000) * 0.004 * ONE_Q16)); // [−8, 8]

describe('integer GELU', () => {
  it('matches float64 i-GELU within 2^-14 on [−8, 8]', () => {
    const worst = Math.max(...grid.map((z) => Math.abs(geluQ16(z) / ONE_Q16 - iGelu(z / ONE_Q16))));
    expect(worst).toBeLessThan(2 ** -14);
  });

  it('is within 0.025 of the true GELU (the i-GELU approximation error itself)', () => {
    const worst = Math.max(...grid.map((z) => Math.abs(geluQ16(z) / ONE_Q16 - gelu(z / ONE_Q16))));
    expect(worst).toBeLessThan(0.025);
  });

  it('derivative matches central differences of the float64 i-GELU within 2^-10 (away from 0)', () => {
    const h = 1e-5;
    for (const z of grid) {
      const x = z / ONE_Q16;
      if (Math.abs(x) < 0.01) continue; // i-GELU's L jumps at 0
      const fd = (iGelu(x + h) - iGelu(x - h)) / (2 * h);
      expect(Math.abs(geluGradQ16(z) / ONE_Q16 - fd)).toBeLessThan(2 ** -10);
    }
  });
});

describe('activations and their derivatives', () => {
  const z = Int32Array.from([-3 * ONE_Q16, -ONE_Q16, -9, -1, 0, 1, 9, ONE_Q16 - 1, ONE_Q16, 5 * ONE_Q16]);
  const g = Int32Array.from(z, (_, i) => (i + 1) * 1000 - 4003);
  const run = (act: Parameters<typeof activate>[0]) => {
    const h = new Int32Array(z.length);
    const gz = new Int32Array(z.length);
    activate(act, z, h, z.length);
    activationBackward(act, z, g, gz, z.length);
    return { h: [...h], gz: [...gz] };
  };

  it('relu', () => {
    const { h, gz } = run('relu');
    expect(h).toEqual([...z].map((v) => Math.max(v, 0)));
    expect(gz).toEqual([...z].map((v, i) => (v > 0 ? g[i] : 0)));
  });

  it('leaky_relu floors by shift and scales errors by 1/8 rounded', () => {
    const { h, gz } = run('leaky_relu');
    expect(h).toEqual([...z].map((v) => (v >= 0 ? v : Math.floor(v / 8))));
    expect(gz).toEqual([...z].map((v, i) => (v > 0 ? g[i] : Math.floor((g[i] + 4) / 8))));
  });

  it('hardtanh', () => {
    const { h, gz } = run('hardtanh');
    expect(h).toEqual([...z].map((v) => Math.min(ONE_Q16, Math.max(-ONE_Q16, v))));
    expect(gz).toEqual([...z].map((v, i) => (Math.abs(v) < ONE_Q16 ? g[i] : 0)));
  });

  it('gelu', () => {
    const { h, gz } = run('gelu');
    expect(h).toEqual([...z].map(geluQ16));
    for (let i = 0; i < z.length; i++) {
      expect(Math.abs(gz[i] - g[i] * (geluGradQ16(z[i]) / ONE_Q16))).toBeLessThanOrEqual(0.5);
    }
  });
});
