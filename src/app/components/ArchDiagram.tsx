/** A drawing of an MLP: one bar per layer, height by width (log), labelled with units and activation. */
import type { TaskSpec } from '../../protocol/spec.ts';
import { useChartWidth } from './Charts.tsx';

export function ArchDiagram({ spec }: { spec: TaskSpec }) {
  const layers = [
    { units: spec.model.inputs, name: 'input', residual: false },
    ...spec.model.hidden.map((l) => ({ units: l.units, name: l.activation, residual: l.residual })),
    { units: spec.model.classes, name: 'softmax', residual: false },
  ].map((l, i) => ({ ...l, id: `layer-${i}` }));
  // Laid out in real pixels at the box's width, so labels keep their size on a phone.
  const [box, boxWidth] = useChartWidth(480);
  const width = Math.min(boxWidth, Math.max(280, layers.length * 110));
  const height = 170;
  const maxLog = Math.max(...layers.map((l) => Math.log2(l.units + 1)));
  const barH = (u: number) => 24 + (Math.log2(u + 1) / maxLog) * 96;
  const x = (i: number) => 40 + i * ((width - 80) / Math.max(1, layers.length - 1));
  const mid = 70;
  const description = layers
    .map((l) => `${l.units} ${l.name}${l.residual ? ' with residual' : ''}`)
    .join(', then ');
  return (
    <div ref={box} className="chart-box">
      <svg
        className="arch"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Architecture: ${description}`}
        data-testid="arch"
      >
        {layers.slice(1).map((l, i) => (
          <line key={`edge-${l.id}`} x1={x(i) + 12} x2={x(i + 1) - 12} y1={mid} y2={mid} className="edge" />
        ))}
        {layers.map((l, i) =>
          l.residual ? (
            <path
              key={`skip-${l.id}`}
              d={`M${x(i - 1)},${mid - barH(l.units) / 2 - 4} Q${(x(i - 1) + x(i)) / 2},${mid - barH(l.units) / 2 - 30} ${x(i)},${mid - barH(l.units) / 2 - 4}`}
              className="skip-edge"
            />
          ) : null,
        )}
        {layers.map((l, i) => (
          <g key={l.id}>
            <rect
              x={x(i) - 12}
              y={mid - barH(l.units) / 2}
              width={24}
              height={barH(l.units)}
              rx={6}
              className={i === 0 ? 'layer input' : i === layers.length - 1 ? 'layer output' : 'layer'}
            />
            <text x={x(i)} y={150} textAnchor="middle" className="tick">
              {l.units}
            </text>
            <text x={x(i)} y={164} textAnchor="middle" className="tick muted">
              {l.name}
            </text>
          </g>
        ))}
      </svg>
    </div>
  );
}
