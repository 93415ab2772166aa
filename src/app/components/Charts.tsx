/** Small hand-written SVG charts: a line chart (loss, best accuracy) with accessible summaries. */

export interface LineChartProps {
  values: number[];
  /** Optional x values (same length); defaults to the index. */
  xs?: number[];
  label: string;
  width?: number;
  height?: number;
  format?: (v: number) => string;
  testId?: string;
}

export function LineChart({
  values,
  xs,
  label,
  width = 800,
  height = 200,
  format = (v) => v.toFixed(3),
  testId,
}: LineChartProps) {
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  if (values.length === 0) {
    return (
      <div className="chart-empty muted" data-testid={testId}>
        No data yet
      </div>
    );
  }
  const x = xs ?? values.map((_, i) => i);
  const [xMin, xMax] = extent(x);
  const [lo, hi] = extent(values);
  // A flat series still gets a visible band, and its two labels do not overlap.
  const pad1 = hi === lo ? Math.max(Math.abs(hi) * 0.05, 0.01) : 0;
  const [yMin, yMax] = [lo - pad1, hi + pad1];
  const sx = (v: number) => pad.l + ((v - xMin) / (xMax - xMin || 1)) * (width - pad.l - pad.r);
  const sy = (v: number) => height - pad.b - ((v - yMin) / (yMax - yMin || 1)) * (height - pad.t - pad.b);
  const path = values
    .map((v, i) => `${i === 0 ? 'M' : 'L'}${sx(x[i]).toFixed(1)},${sy(v).toFixed(1)}`)
    .join('');
  const last = values[values.length - 1];
  return (
    <svg
      className="chart"
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${label}: ${values.length} points, latest ${format(last)}, range ${format(yMin)} to ${format(yMax)}`}
      data-testid={testId}
    >
      <line x1={pad.l} x2={width - pad.r} y1={height - pad.b} y2={height - pad.b} className="axis" />
      <line x1={pad.l} x2={pad.l} y1={pad.t} y2={height - pad.b} className="axis" />
      <text x={pad.l - 4} y={sy(yMax) + 4} className="tick" textAnchor="end">
        {format(yMax)}
      </text>
      <text x={pad.l - 4} y={sy(yMin)} className="tick" textAnchor="end">
        {format(yMin)}
      </text>
      <path d={path} className="line" />
      <circle cx={sx(x[x.length - 1])} cy={sy(last)} r={3} className="dot-last" />
    </svg>
  );
}

export function extent(values: number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
