/** Accuracy against cost (parameters or FLOPs, log scale), with the Pareto front drawn through it. */
import { compactNumber, percent } from '../lib/format.ts';
import { paretoFront, type RankedModel } from '../lib/models.ts';
import { extent, Legend, useChartWidth } from './Charts.tsx';

interface Props {
  models: RankedModel[];
  axis: 'params' | 'flops';
  selected?: string;
  onSelect: (taskId: string) => void;
}

export function ParetoChart({ models, axis, selected, onSelect }: Props) {
  const [box, width] = useChartWidth(880);
  const height = width < 500 ? 260 : 320;
  const pad = { l: 52, r: 16, t: 24, b: 40 };
  if (models.length === 0) return <div className="chart-empty muted">No settled models yet</div>;
  const points = models.map((m) => ({ accuracy: m.accuracy, cost: m[axis] }));
  const [c0, c1] = extent(points.map((p) => Math.log10(Math.max(1, p.cost))));
  // One model (or equal costs) still gets an axis half a decade either side.
  const [cMin, cMax] = c0 === c1 ? [c0 - 0.5, c1 + 0.5] : [c0, c1];
  const [aMin, aMax] = extent(points.map((p) => p.accuracy));
  const lo = Math.max(0, aMin - 0.02);
  const hi = Math.min(1, aMax + 0.02);
  const sx = (c: number) =>
    pad.l + ((Math.log10(Math.max(1, c)) - cMin) / (cMax - cMin || 1)) * (width - pad.l - pad.r);
  const sy = (a: number) => height - pad.b - ((a - lo) / (hi - lo || 1)) * (height - pad.t - pad.b);
  const front = paretoFront(points);
  const frontPath = front
    .map(
      (i, k) => `${k === 0 ? 'M' : 'L'}${sx(points[i].cost).toFixed(1)},${sy(points[i].accuracy).toFixed(1)}`,
    )
    .join('');
  const onFront = new Set(front);
  return (
    <div ref={box} className="chart-box">
      <svg
        className="chart pareto"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        data-testid="pareto"
      >
        <title>{`Accuracy against ${axis === 'params' ? 'parameters' : 'FLOPs'}: ${models.length} models, ${front.length} on the Pareto front`}</title>
        <line x1={pad.l} x2={width - pad.r} y1={height - pad.b} y2={height - pad.b} className="axis" />
        <line x1={pad.l} x2={pad.l} y1={pad.t} y2={height - pad.b} className="axis" />
        <text x={4} y={14} className="tick axis-label">
          accuracy
        </text>
        <text x={(width + pad.l) / 2} y={height - 6} className="tick axis-label" textAnchor="middle">
          {axis === 'params' ? 'parameters' : 'FLOPs per example'} (log scale)
        </text>
        <text x={pad.l} y={height - pad.b + 16} className="tick" textAnchor="start">
          {compactNumber(10 ** cMin)}
        </text>
        <text x={width - pad.r} y={height - pad.b + 16} className="tick" textAnchor="end">
          {compactNumber(10 ** cMax)}
        </text>
        <text x={pad.l - 6} y={sy(hi) + 4} className="tick" textAnchor="end">
          {percent(hi, 0)}
        </text>
        <text x={pad.l - 6} y={sy(lo)} className="tick" textAnchor="end">
          {percent(lo, 0)}
        </text>
        {front.length > 1 && <path d={frontPath} className="front" />}
        {models.map((m, i) => {
          const id = m.entry.taskId;
          return (
            // biome-ignore lint/a11y/useSemanticElements: an SVG point cannot be a <button>; it gets the button role and keys.
            <g
              key={id}
              role="button"
              tabIndex={0}
              className="point-target"
              aria-label={`${m.label}: ${percent(m.accuracy)} accuracy, ${compactNumber(points[i].cost)} ${axis}`}
              aria-pressed={id === selected}
              onClick={() => onSelect(id)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') onSelect(id);
              }}
            >
              <title>{`${m.label} · ${percent(m.accuracy)} · ${compactNumber(points[i].cost)} ${axis}`}</title>
              {/* A 24 px hit area around the visible dot. */}
              <circle cx={sx(points[i].cost)} cy={sy(points[i].accuracy)} r={12} className="hit" />
              <circle
                cx={sx(points[i].cost)}
                cy={sy(points[i].accuracy)}
                r={id === selected ? 7 : 5}
                className={`point${onFront.has(i) ? ' on-front' : ''}${id === selected ? ' selected' : ''}`}
              />
            </g>
          );
        })}
      </svg>
      <Legend
        items={[
          { mark: 'dot', text: 'on the Pareto front: no other model is both more accurate and cheaper' },
          { mark: 'dot-dim', text: 'other model' },
          { mark: 'dashed', text: 'Pareto front' },
          { mark: 'ring', text: 'selected model' },
        ]}
      />
    </div>
  );
}
