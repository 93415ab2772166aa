/** Leaderboard entries enriched with what the page draws: the spec's layers, parameters and FLOPs. */
import type { TaskSpec } from '../../protocol/spec.ts';
import type { LeaderboardEntry } from './api.ts';

export interface RankedModel {
  entry: LeaderboardEntry;
  spec?: TaskSpec;
  accuracy: number;
  params: number;
  flops: number;
  widths: number[];
  label: string;
}

/** Parameters, FLOPs (2·MACs per example) and a label, from the spec when the entry lacks them. */
export function rankModel(entry: LeaderboardEntry): RankedModel {
  const spec = entry.spec as TaskSpec | undefined;
  const widths = spec
    ? [spec.model.inputs, ...spec.model.hidden.map((l) => l.units), spec.model.classes]
    : [];
  let params = 0;
  let macs = 0;
  for (let l = 0; l + 1 < widths.length; l++) {
    params += widths[l] * widths[l + 1] + widths[l + 1];
    macs += widths[l] * widths[l + 1];
  }
  const label = spec
    ? spec.model.hidden.map((l) => `${l.units}${l.activation}${l.residual ? '+r' : ''}`).join('–') || 'linear'
    : 'unknown';
  return {
    entry,
    spec,
    accuracy: entry.valCount > 0 ? entry.valCorrect / entry.valCount : 0,
    params: entry.params ?? params,
    flops: entry.flops ?? 2 * macs,
    widths,
    label,
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
