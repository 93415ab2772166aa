import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { percent } from '../lib/format.ts';
import { clockTime } from '../pages/Search.tsx';
import { LineChart } from './Charts.tsx';

const chart = (values: number[], yRange?: [number, number]) =>
  renderToStaticMarkup(
    createElement(LineChart, { values, label: 'best', format: percent, xLabel: 'x', yLabel: 'y', yRange }),
  );

describe('LineChart', () => {
  it('keeps a flat series inside its y range (a flat 100% accuracy is not drawn up to 105%)', () => {
    expect(chart([1, 1])).toContain(percent(1.05));
    const capped = chart([1, 1], [0, 1]);
    expect(capped).not.toContain(percent(1.05));
    expect(capped).toContain(percent(1));
    expect(capped).toContain(percent(0.95));
  });
});

describe('clockTime', () => {
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
  it('shows seconds when the settlements span less than two minutes', () => {
    const short = clockTime([{ at: t0 }, { at: t0 + 20_000 }]);
    expect(short(t0)).not.toBe(short(t0 + 20_000));
    const long = clockTime([{ at: t0 }, { at: t0 + 30 * 60_000 }]);
    expect(long(t0)).toBe(long(t0 + 20_000));
  });
});
