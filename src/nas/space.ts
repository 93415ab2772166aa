/**
 * The MLP search space (issue 4): architectures, their canonical encoding and hash, exact
 * parameter and FLOP counts, random sampling, a one-change mutation, a parameter budget, and the
 * mapping architecture + budget → TaskSpec.
 *
 * An *architecture* here is the model (1–4 hidden layers) together with the training
 * hyper-parameters the search tunes (learning rate, momentum, weight decay, batch), each drawn from
 * a fixed grid. Everything is an integer, so two equal architectures have one canonical JSON form
 * (RFC 8785) and one hash.
 */
import canonicalize from 'canonicalize';
import { type Hex, keccak256, stringToBytes } from 'viem';
import { z } from 'zod';
import {
  ACTIVATIONS,
  type Activation,
  type HiddenLayer,
  type TaskSpec,
  TaskSpecSchema,
} from '../protocol/spec.ts';
import type { HashRng } from './rng.ts';

/** Hidden widths: powers of two and their 1.5× midpoints from 16 to 512 (ordinal, so mutation steps ±1). */
export const WIDTHS = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512] as const;
/** Learning rate × 2^16: 1/256 … 1/8, powers of two (exact in fixed point). */
export const LEARNING_RATES_Q16 = [256, 512, 1024, 2048, 4096, 8192] as const;
/** Momentum × 2^16: 0, 1/2, 3/4, 7/8. */
export const MOMENTA_Q16 = [0, 32768, 49152, 57344] as const;
/** L2 weight decay × 2^24: 0, 2^-16, 2^-13, 2^-10. */
export const WEIGHT_DECAYS_Q24 = [0, 256, 2048, 16384] as const;
export const BATCHES = [16, 32, 64, 128] as const;
export const MIN_LAYERS = 1;
export const MAX_LAYERS = 4;

export interface Architecture {
  hidden: HiddenLayer[];
  learningRateQ16: number;
  momentumQ16: number;
  weightDecayQ24: number;
  batch: number;
}

/** The problem an architecture is shaped for and the parameter budget it must respect. */
export interface SearchSpace {
  inputs: number;
  classes: number;
  /** Largest allowed parameter count (weights + biases, output layer included). */
  maxParams: number;
}

export const DEFAULT_MAX_PARAMS = 250_000;

export function defineSpace(inputs: number, classes: number, maxParams = DEFAULT_MAX_PARAMS): SearchSpace {
  const space = { inputs, classes, maxParams };
  const smallest = paramCount(space, {
    hidden: [{ units: WIDTHS[0], activation: 'relu', residual: false }],
    learningRateQ16: LEARNING_RATES_Q16[0],
    momentumQ16: MOMENTA_Q16[0],
    weightDecayQ24: WEIGHT_DECAYS_Q24[0],
    batch: BATCHES[0],
  });
  if (maxParams < smallest)
    throw new Error(`parameter budget ${maxParams} is below the smallest model (${smallest})`);
  return space;
}

const oneOf = <T extends number>(values: readonly T[], name: string) =>
  z
    .number()
    .int()
    .refine((v) => (values as readonly number[]).includes(v), `${name} must be one of ${values.join(', ')}`);

/** Validates an architecture's grids and layer rules (not the parameter budget, which is per space). */
export const ArchitectureSchema = z
  .strictObject({
    hidden: z
      .array(
        z.strictObject({
          units: oneOf(WIDTHS, 'units'),
          activation: z.enum(ACTIVATIONS),
          residual: z.boolean(),
        }),
      )
      .min(MIN_LAYERS)
      .max(MAX_LAYERS),
    learningRateQ16: oneOf(LEARNING_RATES_Q16, 'learningRateQ16'),
    momentumQ16: oneOf(MOMENTA_Q16, 'momentumQ16'),
    weightDecayQ24: oneOf(WEIGHT_DECAYS_Q24, 'weightDecayQ24'),
    batch: oneOf(BATCHES, 'batch'),
  })
  .superRefine((arch, ctx) => {
    arch.hidden.forEach((layer, i) => {
      if (layer.residual && (i === 0 || arch.hidden[i - 1].units !== layer.units)) {
        ctx.addIssue({
          code: 'custom',
          path: ['hidden', i, 'residual'],
          message: 'a residual connection needs a previous hidden layer of equal width',
        });
      }
    });
  });

export function parseArchitecture(input: unknown): Architecture {
  return ArchitectureSchema.parse(input);
}

/** RFC 8785 JSON of the architecture: the canonical encoding (key order and number form fixed). */
export function canonicalArchitecture(arch: Architecture): string {
  const text = canonicalize(ArchitectureSchema.parse(arch));
  if (text === undefined) throw new Error('architecture cannot be canonicalized');
  return text;
}

/** keccak256 of the canonical encoding: the architecture's identity, for duplicate detection. */
export function architectureHash(arch: Architecture): Hex {
  return keccak256(stringToBytes(canonicalArchitecture(arch)));
}

/** Layer widths from input to output: [inputs, ...hidden, classes]. */
export function layerWidths(space: Pick<SearchSpace, 'inputs' | 'classes'>, arch: Architecture): number[] {
  return [space.inputs, ...arch.hidden.map((l) => l.units), space.classes];
}

/** Exact parameter count: Σ over weight layers of K·N weights + N biases (output layer included). */
export function paramCount(space: Pick<SearchSpace, 'inputs' | 'classes'>, arch: Architecture): number {
  const w = layerWidths(space, arch);
  let total = 0;
  for (let l = 0; l + 1 < w.length; l++) total += w[l] * w[l + 1] + w[l + 1];
  return total;
}

/**
 * FLOPs of one example's forward pass, defined as 2 × multiply-accumulates of the matmuls
 * (2·Σ K·N). Bias adds, activations and residual adds are not counted: they are O(width), and
 * leaving them out keeps the figure comparable with the usual "2·MACs" convention.
 */
export function flopCount(space: Pick<SearchSpace, 'inputs' | 'classes'>, arch: Architecture): number {
  const w = layerWidths(space, arch);
  let macs = 0;
  for (let l = 0; l + 1 < w.length; l++) macs += w[l] * w[l + 1];
  return 2 * macs;
}

export function withinBudget(space: SearchSpace, arch: Architecture): boolean {
  return paramCount(space, arch) <= space.maxParams;
}

/** A short human-readable label, e.g. `128relu-128relu+r lr=1/64 m=0.875 wd=2^-13 b=64`. */
export function describeArchitecture(arch: Architecture): string {
  const layers = arch.hidden.map((l) => `${l.units}${l.activation}${l.residual ? '+r' : ''}`).join('-');
  const lr = `lr=1/${65536 / arch.learningRateQ16}`;
  const m = `m=${arch.momentumQ16 / 65536}`;
  const wd = arch.weightDecayQ24 === 0 ? 'wd=0' : `wd=2^${Math.log2(arch.weightDecayQ24 / 2 ** 24)}`;
  return `${layers} ${lr} ${m} ${wd} b=${arch.batch}`;
}

/** Drops residual flags that the layer widths no longer allow (after a width or depth change). */
function repairResiduals(hidden: HiddenLayer[]): HiddenLayer[] {
  return hidden.map((layer, i) => ({
    ...layer,
    residual: layer.residual && i > 0 && hidden[i - 1].units === layer.units,
  }));
}

function sampleLayer(rng: HashRng, previousUnits: number | undefined): HiddenLayer {
  const units = rng.pick(WIDTHS);
  const residual = previousUnits === units && rng.chance(1, 2);
  return { units, activation: rng.pick(ACTIVATIONS), residual };
}

/** One architecture drawn uniformly from the grids (depth first, then each layer), within budget. */
export function sampleArchitecture(space: SearchSpace, rng: HashRng): Architecture {
  for (;;) {
    const depth = MIN_LAYERS + rng.int(MAX_LAYERS - MIN_LAYERS + 1);
    const hidden: HiddenLayer[] = [];
    for (let i = 0; i < depth; i++) hidden.push(sampleLayer(rng, hidden[i - 1]?.units));
    const arch: Architecture = {
      hidden,
      learningRateQ16: rng.pick(LEARNING_RATES_Q16),
      momentumQ16: rng.pick(MOMENTA_Q16),
      weightDecayQ24: rng.pick(WEIGHT_DECAYS_Q24),
      batch: rng.pick(BATCHES),
    };
    if (withinBudget(space, arch)) return arch;
  }
}

/** The next value up or down an ordinal grid (one step, direction drawn; bounces at the ends). */
function neighbour<T extends number>(grid: readonly T[], value: number, rng: HashRng): T {
  const i = grid.indexOf(value as T);
  if (i === 0) return grid[1];
  if (i === grid.length - 1) return grid[i - 1];
  return grid[rng.chance(1, 2) ? i + 1 : i - 1];
}

export const MUTATIONS = [
  'width',
  'activation',
  'residual',
  'add-layer',
  'remove-layer',
  'learning-rate',
  'momentum',
  'weight-decay',
  'batch',
] as const;
export type MutationKind = (typeof MUTATIONS)[number];

export interface Mutation {
  arch: Architecture;
  kind: MutationKind;
  /** Hidden layer the change applies to, where it applies to one. */
  layer?: number;
}

/** Mutations that can change this architecture (a residual toggle needs an equal-width predecessor). */
function applicableMutations(arch: Architecture): MutationKind[] {
  const canToggleResidual = arch.hidden.some((l, i) => i > 0 && arch.hidden[i - 1].units === l.units);
  return MUTATIONS.filter(
    (m) =>
      (m !== 'residual' || canToggleResidual) &&
      (m !== 'add-layer' || arch.hidden.length < MAX_LAYERS) &&
      (m !== 'remove-layer' || arch.hidden.length > MIN_LAYERS),
  );
}

function mutateOnce(arch: Architecture, kind: MutationKind, rng: HashRng): Mutation {
  const hidden = arch.hidden.map((l) => ({ ...l }));
  const at = (n: number) => rng.int(n);
  switch (kind) {
    case 'width': {
      const i = at(hidden.length);
      hidden[i].units = neighbour(WIDTHS, hidden[i].units, rng);
      return { kind, layer: i, arch: { ...arch, hidden: repairResiduals(hidden) } };
    }
    case 'activation': {
      const i = at(hidden.length);
      hidden[i].activation = rng.pick(ACTIVATIONS.filter((a) => a !== hidden[i].activation)) as Activation;
      return { kind, layer: i, arch: { ...arch, hidden } };
    }
    case 'residual': {
      const candidates = hidden.flatMap((l, i) => (i > 0 && hidden[i - 1].units === l.units ? [i] : []));
      const i = rng.pick(candidates);
      hidden[i].residual = !hidden[i].residual;
      return { kind, layer: i, arch: { ...arch, hidden } };
    }
    case 'add-layer': {
      const i = at(hidden.length + 1);
      hidden.splice(i, 0, sampleLayer(rng, hidden[i - 1]?.units));
      return { kind, layer: i, arch: { ...arch, hidden: repairResiduals(hidden) } };
    }
    case 'remove-layer': {
      const i = at(hidden.length);
      hidden.splice(i, 1);
      return { kind, layer: i, arch: { ...arch, hidden: repairResiduals(hidden) } };
    }
    case 'learning-rate':
      return {
        kind,
        arch: { ...arch, learningRateQ16: neighbour(LEARNING_RATES_Q16, arch.learningRateQ16, rng) },
      };
    case 'momentum':
      return { kind, arch: { ...arch, momentumQ16: neighbour(MOMENTA_Q16, arch.momentumQ16, rng) } };
    case 'weight-decay':
      return {
        kind,
        arch: { ...arch, weightDecayQ24: neighbour(WEIGHT_DECAYS_Q24, arch.weightDecayQ24, rng) },
      };
    case 'batch':
      return { kind, arch: { ...arch, batch: neighbour(BATCHES, arch.batch, rng) } };
  }
}

/**
 * One change to one thing (Real et al. 2019's single mutation): a layer's width by one grid step, a
 * layer's activation, a residual toggle, a layer added or removed, or one training hyper-parameter
 * by one grid step. A width or depth change also drops residual flags the new widths no longer
 * allow (a consequence, not a second choice). The result is valid, within budget, and differs from
 * the parent; if `reject` says a candidate is unwanted (a duplicate), another is drawn.
 */
export function mutate(
  space: SearchSpace,
  parent: Architecture,
  rng: HashRng,
  reject: (arch: Architecture) => boolean = () => false,
  attempts = 64,
): Mutation | undefined {
  const kinds = applicableMutations(parent);
  for (let i = 0; i < attempts; i++) {
    const m = mutateOnce(parent, rng.pick(kinds), rng);
    if (withinBudget(space, m.arch) && !reject(m.arch)) return m;
  }
  return undefined;
}

/** What a TaskSpec needs besides the architecture: the dataset and its validation split. */
export interface TrackInfo {
  name: string;
  sha256: string;
  inputs: number;
  classes: number;
  validation: number;
  splitSeed: number;
}

export interface SpecOptions {
  /** Training steps: the fidelity (the microtask's budget). */
  steps: number;
  /** Training seed (init, data order, stochastic rounding). */
  seed: number;
  /** Default: about 16 trace checkpoints per task. */
  checkpointEvery?: number;
}

/** Architecture + training budget + dataset → a validated TaskSpec. */
export function toTaskSpec(track: TrackInfo, arch: Architecture, options: SpecOptions): TaskSpec {
  return TaskSpecSchema.parse({
    v: 1,
    dataset: { name: track.name, sha256: track.sha256 },
    split: { seed: track.splitSeed, validation: track.validation },
    model: { inputs: track.inputs, classes: track.classes, hidden: arch.hidden },
    training: {
      optimizer: 'sgd',
      batch: arch.batch,
      steps: options.steps,
      seed: options.seed,
      learningRateQ16: arch.learningRateQ16,
      momentumQ16: arch.momentumQ16,
      weightDecayQ24: arch.weightDecayQ24,
    },
    checkpointEvery: options.checkpointEvery ?? Math.max(1, Math.ceil(options.steps / 16)),
  });
}

/** The architecture a spec trains (for specs whose values lie on the search grids). */
export function architectureOf(spec: TaskSpec): Architecture {
  return parseArchitecture({
    hidden: spec.model.hidden,
    learningRateQ16: spec.training.learningRateQ16,
    momentumQ16: spec.training.momentumQ16,
    weightDecayQ24: spec.training.weightDecayQ24,
    batch: spec.training.batch,
  });
}
