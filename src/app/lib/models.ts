/** Leaderboard entries enriched with what the page draws: the spec's layers, parameters and FLOPs. */
import { weightLayerShapes } from '../../onnx/cnn.ts';
import { type AnyTaskSpec, layerShapes, type TaskSpec, type TaskSpecV2 } from '../../protocol/spec.ts';
import type { LeaderboardEntry } from './api.ts';

export interface RankedModel {
  entry: LeaderboardEntry;
  spec?: AnyTaskSpec;
  /** The search track: the dataset's name, `-cnn` for conv (v2) models (e.g. mnist, mnist-cnn). */
  track: string;
  accuracy: number;
  params: number;
  flops: number;
  widths: number[];
  label: string;
}

/** Parameters, MACs per example and a label of a v1 (MLP) spec. */
function mlpCosts(spec: TaskSpec) {
  const widths = [spec.model.inputs, ...spec.model.hidden.map((l) => l.units), spec.model.classes];
  let params = 0;
  let macs = 0;
  for (let l = 0; l + 1 < widths.length; l++) {
    params += widths[l] * widths[l + 1] + widths[l + 1];
    macs += widths[l] * widths[l + 1];
  }
  const label = spec.model.hidden.map((l) => `${l.units}${l.activation}${l.residual ? '+r' : ''}`).join('–');
  return { widths, params, macs, label: label || 'linear' };
}

/** The same for a v2 (conv) spec: a conv's MACs are its output positions × k·k·inChannels × channels. */
function cnnCosts(spec: TaskSpecV2) {
  const shapes = layerShapes(spec.model);
  const weights = weightLayerShapes(spec.model);
  const params = weights.reduce((n, w) => n + w.inputs * w.outputs + w.outputs, 0);
  let macs = 0;
  let w = 0;
  spec.model.layers.forEach((layer, i) => {
    const out = shapes[i];
    if (layer.op === 'conv' && out.kind === 'image')
      macs += out.height * out.width * weights[w++].inputs * layer.channels;
    else if (layer.op === 'dense') macs += weights[w].inputs * weights[w++].outputs;
  });
  const last = weights[weights.length - 1];
  macs += last.inputs * last.outputs;
  const label = spec.model.layers
    .map((l) => {
      switch (l.op) {
        case 'conv':
          return `c${l.channels}k${l.kernel}${l.stride === 2 ? 's2' : ''}${l.residual ? '+r' : ''}`;
        case 'dense':
          return `${l.units}${l.activation}${l.residual ? '+r' : ''}`;
        default:
          return l.op;
      }
    })
    .join('–');
  return { widths: [], params, macs, label };
}

/** Parameters, FLOPs (2·MACs per example) and a label, from the spec when the entry lacks them. */
export function rankModel(entry: LeaderboardEntry): RankedModel {
  const spec = entry.spec as AnyTaskSpec | undefined;
  const costs = !spec
    ? { widths: [], params: 0, macs: 0, label: 'unknown' }
    : spec.v === 2
      ? cnnCosts(spec)
      : mlpCosts(spec);
  const dataset = spec?.dataset?.name ?? 'unknown';
  return {
    entry,
    spec,
    track: spec?.v === 2 ? `${dataset}-cnn` : dataset,
    accuracy: entry.valCount > 0 ? entry.valCorrect / entry.valCount : 0,
    params: entry.params ?? costs.params,
    flops: entry.flops ?? 2 * costs.macs,
    widths: costs.widths,
    label: costs.label,
  };
}

/** Indices of the models no other model beats on both accuracy (higher) and cost (lower). */
export function paretoFront(models: { accuracy: number; cost: number }[]): number[] {
  const order = models
    .map((_, i) => i)
    .sort((a, b) => models[a].cost - models[b].cost || models[b].accuracy - models[a].accuracy);
  const front: number[] = [];
  let best = Number.NEGATIVE_INFINITY;
  for (const i of order) {
    if (models[i].accuracy > best) {
      front.push(i);
      best = models[i].accuracy;
    }
  }
  return front;
}
