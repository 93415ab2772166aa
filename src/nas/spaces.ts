/**
 * One interface over the search spaces (the MLP space of ./space.ts and the conv space of
 * ./cnn-space.ts), so the strategies, the search loop and the coordinator drive either without
 * knowing which. A space is plain data (it is saved in a strategy's JSON state); `spaceOps(space)`
 * gives the operations of its family.
 */
import type { Hex } from 'viem';
import { type AnyTaskSpec, isV2, layerShapes, type Shape } from '../protocol/spec.ts';
import {
  CNN_MUTATIONS,
  type CnnArchitecture,
  CnnArchitectureSchema,
  type CnnSpace,
  type CnnTrackInfo,
  cnnArchitectureHash,
  cnnArchitectureOf,
  cnnCounts,
  describeCnnArchitecture,
  mutateCnn,
  sampleCnnArchitecture,
  toCnnTaskSpec,
} from './cnn-space.ts';
import type { HashRng } from './rng.ts';
import {
  type Architecture,
  ArchitectureSchema,
  architectureHash,
  architectureOf,
  describeArchitecture,
  flopCount,
  MUTATIONS,
  mutate,
  paramCount,
  type SearchSpace,
  type SpecOptions,
  sampleArchitecture,
  type TrackInfo,
  toTaskSpec,
  withinBudget,
} from './space.ts';

/** The MLP space ({ inputs, classes, maxParams }, `family` absent or 'mlp') or the conv space. */
export type AnySpace = (SearchSpace & { family?: 'mlp' }) | CnnSpace;
export type AnyArchitecture = Architecture | CnnArchitecture;
/** Every mutation kind of every family (names shared by both mean the same change). */
export const ALL_MUTATIONS = [...new Set<string>([...MUTATIONS, ...CNN_MUTATIONS])] as [string, ...string[]];

export const isCnnSpace = (space: AnySpace): space is CnnSpace => space.family === 'cnn';
export const isCnnArchitecture = (arch: AnyArchitecture): arch is CnnArchitecture => 'stages' in arch;

/** Dataset, split and input shape: what a task spec needs besides the architecture. */
export type AnyTrackInfo = TrackInfo & Partial<Pick<CnnTrackInfo, 'input'>>;

export interface SpaceMutation {
  arch: AnyArchitecture;
  kind: string;
}

export interface SpaceOps {
  /** Validates an architecture of this family (grids and layer rules). */
  parse(input: unknown): AnyArchitecture;
  hash(arch: AnyArchitecture): Hex;
  params(arch: AnyArchitecture): number;
  /** Forward FLOPs per example (2 × MACs). */
  flops(arch: AnyArchitecture): number;
  withinBudget(arch: AnyArchitecture): boolean;
  sample(rng: HashRng): AnyArchitecture;
  mutate(
    parent: AnyArchitecture,
    rng: HashRng,
    reject?: (a: AnyArchitecture) => boolean,
  ): SpaceMutation | undefined;
  /** A short readable code. */
  describe(arch: AnyArchitecture): string;
  toSpec(track: AnyTrackInfo, arch: AnyArchitecture, options: SpecOptions): AnyTaskSpec;
}

function cnnTrack(track: AnyTrackInfo): CnnTrackInfo {
  if (!track.input)
    throw new Error(`track '${track.name}' has no image input shape: it cannot take conv models`);
  return { ...track, input: track.input };
}

export function spaceOps(space: AnySpace): SpaceOps {
  if (isCnnSpace(space)) {
    const cnn = (a: AnyArchitecture) => a as CnnArchitecture;
    return {
      parse: (input) => CnnArchitectureSchema.parse(input),
      hash: (a) => cnnArchitectureHash(cnn(a)),
      params: (a) => cnnCounts(space, cnn(a)).params,
      flops: (a) => 2 * cnnCounts(space, cnn(a)).macs,
      withinBudget: (a) => {
        const c = cnnCounts(space, cnn(a));
        return c.params <= space.maxParams && c.macs <= space.maxMacs;
      },
      sample: (rng) => sampleCnnArchitecture(space, rng),
      mutate: (parent, rng, reject) =>
        mutateCnn(space, cnn(parent), rng, reject ? (a) => reject(a) : undefined),
      describe: (a) => describeCnnArchitecture(cnn(a)),
      toSpec: (track, a, options) => toCnnTaskSpec(cnnTrack(track), cnn(a), options),
    };
  }
  const mlp = (a: AnyArchitecture) => a as Architecture;
  return {
    parse: (input) => ArchitectureSchema.parse(input),
    hash: (a) => architectureHash(mlp(a)),
    params: (a) => paramCount(space, mlp(a)),
    flops: (a) => flopCount(space, mlp(a)),
    withinBudget: (a) => withinBudget(space, mlp(a)),
    sample: (rng) => sampleArchitecture(space, rng),
    mutate: (parent, rng, reject) => mutate(space, mlp(parent), rng, reject ? (a) => reject(a) : undefined),
    describe: (a) => describeArchitecture(mlp(a)),
    toSpec: (track, a, options) => toTaskSpec(track, mlp(a), options),
  };
}

/** A readable code for any architecture (MLP or conv). */
export function describeAny(arch: AnyArchitecture): string {
  return isCnnArchitecture(arch) ? describeCnnArchitecture(arch) : describeArchitecture(arch);
}

/** The architecture a spec of either version trains (throws when it lies outside the spaces' grids). */
export function anyArchitectureOf(spec: AnyTaskSpec): AnyArchitecture {
  return isV2(spec) ? cnnArchitectureOf(spec) : architectureOf(spec);
}

/**
 * Exact parameter and FLOP (2 × forward MACs) counts of any valid spec, read from its layers (so specs
 * off the search grids count too): v1 Σ K·N (+ N), v2 the conv formula of `cnnCounts` per layer.
 */
export function specCounts(spec: AnyTaskSpec): { params: number; flops: number } {
  const widths = isV2(spec) ? undefined : [spec.model.inputs, ...spec.model.hidden.map((h) => h.units)];
  let params = 0;
  let macs = 0;
  const dense = (K: number, N: number) => {
    params += K * N + N;
    macs += K * N;
  };
  if (widths) {
    for (let i = 1; i < widths.length; i++) dense(widths[i - 1], widths[i]);
    dense(widths[widths.length - 1], spec.model.classes);
    return { params, flops: 2 * macs };
  }
  const v2 = spec as Extract<AnyTaskSpec, { v: 2 }>;
  const shapes = layerShapes(v2.model);
  let prev = { kind: 'image', ...v2.model.input } as Shape;
  v2.model.layers.forEach((layer, i) => {
    const out = shapes[i];
    if (layer.op === 'conv' && prev.kind === 'image' && out.kind === 'image') {
      const K = prev.channels * layer.kernel * layer.kernel;
      params += K * layer.channels + layer.channels;
      macs += out.height * out.width * layer.channels * K;
    } else if (layer.op === 'dense' && prev.kind === 'flat') dense(prev.units, layer.units);
    prev = out;
  });
  if (prev.kind === 'flat') dense(prev.units, v2.model.classes);
  return { params, flops: 2 * macs };
}
