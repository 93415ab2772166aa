/** Small hand-written SVG charts: a line chart (loss, best accuracy) with axes, legend and a text summary. */
import { useEffect, useState } from 'react';

/**
 * The drawn width of a chart's box, so its SVG is laid out in real pixels and its labels keep their
 * font size on a phone instead of shrinking with the viewBox.
 */
export function useChartWidth(fallback: number): [(node: HTMLDivElement | null) => void, number] {
  // A callback ref: the box may mount after the first render (a chart that had no data yet).
  const [node, setNode] = useState<HTMLDivElement | null>(null);
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    if (!node) return;
    const observer = new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (w > 0) setWidth(w);
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, [node]);
  return [setNode, width];
}

export interface LineChartProps {
  values: number[];
  /** Optional x values (same length); defaults to the index. */
  xs?: number[];
  label: string;
  height?: number;
  format?: (v: number) => string;
  /** Labels for the first and last x (e.g. clock times); without it the x axis is unlabelled ticks. */
  formatX?: (x: number) => string;
  xLabel: string;
  yLabel: string;
  /** Bounds the y axis never passes (accuracy: [0, 1], so a flat 100% is not drawn up to 105%). */
  yRange?: [number, number];
  testId?: string;
}

export function LineChart({
  values,
  xs,
  label,
  height = 200,
  format = (v) => v.toFixed(3),
  formatX,
  xLabel,
  yLabel,
  yRange = [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY],
  testId,
}: LineChartProps) {
  const [box, width] = useChartWidth(640);
  const pad = { l: 56, r: 12, t: 22, b: 38 };
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
  const [yMin, yMax] = [Math.max(yRange[0], lo - pad1), Math.min(yRange[1], hi + pad1)];
  const sx = (v: number) => pad.l + ((v - xMin) / (xMax - xMin || 1)) * (width - pad.l - pad.r);
  const sy = (v: number) => height - pad.b - ((v - yMin) / (yMax - yMin || 1)) * (height - pad.t - pad.b);
  const path = values
    .map((v, i) => `${i === 0 ? 'M' : 'L'}${sx(x[i]).toFixed(1)},${sy(v).toFixed(1)}`)
    .join('');
  const last = values[values.length - 1];
  const bottom = height - pad.b;
  return (
    <div ref={box} className="chart-box">
      <svg
        className="chart"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`${label}: ${values.length} points, latest ${format(last)}, range ${format(yMin)} to ${format(yMax)}`}
        data-testid={testId}
      >
        <line x1={pad.l} x2={width - pad.r} y1={bottom} y2={bottom} className="axis" />
        <line x1={pad.l} x2={pad.l} y1={pad.t} y2={bottom} className="axis" />
        <text x={4} y={12} className="tick axis-label">
          {yLabel}
        </text>
        <text x={pad.l - 4} y={sy(yMax) + 4} className="tick" textAnchor="end">
          {format(yMax)}
        </text>
        <text x={pad.l - 4} y={sy(yMin)} className="tick" textAnchor="end">
          {format(yMin)}
        </text>
        {formatX && (
          <>
            <text x={pad.l} y={bottom + 16} className="tick" textAnchor="start">
              {formatX(xMin)}
            </text>
            <text x={width - pad.r} y={bottom + 16} className="tick" textAnchor="end">
              {formatX(xMax)}
            </text>
          </>
        )}
        <text x={(width + pad.l) / 2} y={height - 4} className="tick axis-label" textAnchor="middle">
          {xLabel}
        </text>
        <path d={path} className="line" />
        <circle cx={sx(x[x.length - 1])} cy={sy(last)} r={3} className="dot-last" />
      </svg>
    </div>
  );
}

/** A chart's key, in HTML under it: one item per mark. */
export function Legend({
  items,
}: {
  items: { mark: 'line' | 'dashed' | 'dot' | 'dot-dim' | 'ring'; text: string }[];
}) {
  return (
    <ul className="legend" aria-label="Legend">
      {items.map((i) => (
        <li key={i.text}>
          <span className={`mark mark-${i.mark}`} aria-hidden="true" />
          {i.text}
        </li>
      ))}
    </ul>
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
