/**
 * A drawing of a model: one bar per layer, height by its activations per example (log), labelled
 * with its size and kind. MLP (v1): units and activation. Conv (v2): channels×height×width and the
 * layer (conv k×k, stride, activation; pool; gap; flatten; dense).
 */
import {
  type AnyTaskSpec,
  isV2,
  type Layer,
  layerShapes,
  type Shape,
  type TaskSpecV2,
} from '../../protocol/spec.ts';
import { useChartWidth } from './Charts.tsx';

interface Bar {
  /** Activations per example (the bar's height, log scale). */
  units: number;
  /** The size shown under the bar. */
  size: string;
  name: string;
  residual: boolean;
}

function mlpBars(spec: Exclude<AnyTaskSpec, TaskSpecV2>): Bar[] {
  const bar = (units: number, name: string, residual = false) => ({
    units,
    size: String(units),
    name,
    residual,
  });
  return [
    bar(spec.model.inputs, 'input'),
    ...spec.model.hidden.map((l) => bar(l.units, l.activation, l.residual)),
    bar(spec.model.classes, 'softmax'),
  ];
}

const sizeOf = (s: Shape) => (s.kind === 'image' ? s.channels * s.height * s.width : s.units);
const sizeText = (s: Shape) =>
  s.kind === 'image' ? `${s.channels}×${s.height}×${s.width}` : String(s.units);

function layerName(l: Layer): string {
  switch (l.op) {
    case 'conv':
      return `conv${l.kernel}${l.stride === 2 ? '/2' : ''} ${l.activation}`;
    case 'dense':
      return l.activation;
    default:
      return l.op;
  }
}

function cnnBars(spec: TaskSpecV2): Bar[] {
  const input: Shape = { kind: 'image', ...spec.model.input };
  const shapes = layerShapes(spec.model);
  return [
    { units: sizeOf(input), size: sizeText(input), name: 'input', residual: false },
    ...spec.model.layers.map((l, i) => ({
      units: sizeOf(shapes[i]),
      size: sizeText(shapes[i]),
      name: layerName(l),
      residual: (l.op === 'conv' || l.op === 'dense') && l.residual,
    })),
    { units: spec.model.classes, size: String(spec.model.classes), name: 'softmax', residual: false },
  ];
}

export function ArchDiagram({ spec }: { spec: AnyTaskSpec }) {
  const layers = (isV2(spec) ? cnnBars(spec) : mlpBars(spec)).map((l, i) => ({ ...l, id: `layer-${i}` }));
  // Laid out in real pixels at the box's width, so labels keep their size on a phone.
  const [box, boxWidth] = useChartWidth(480);
  const width = Math.min(boxWidth, Math.max(280, layers.length * 110));
  const height = 170;
  const maxLog = Math.max(...layers.map((l) => Math.log2(l.units + 1)));
  const barH = (u: number) => 24 + (Math.log2(u + 1) / maxLog) * 96;
  const x = (i: number) => 40 + i * ((width - 80) / Math.max(1, layers.length - 1));
  const mid = 70;
  const description = layers
    .map((l) => `${l.size} ${l.name}${l.residual ? ' with residual' : ''}`)
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
              {l.size}
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
