/**
 * The convolutional (macro) search space of the `mnist-cnn` track (issue 13): stages of conv layers,
 * each ending in a downsample, then global average pooling or a flatten, then a small dense head, plus
 * the training hyper-parameters the search tunes. Canonical encoding and hash, a short readable code
 * (which parses back), exact parameter and MAC/FLOP counts, random sampling, a one-change mutation, a
 * parameter and compute budget, and the mapping architecture + budget → v2 TaskSpec (docs/SEARCH.md).
 *
 * A stage is 1–3 convs and then its downsample: `maxpool` (a 2×2 max-pool after the convs), `stride`
 * (the stage's last conv has stride 2) or `none` (only the last stage may have none). Because every
 * stage but the last ends in a downsample marker, a v2 layer list splits into stages one way only, so
 * distinct architectures are distinct task specs (no duplicate tasks under two names).
 */
import canonicalize from 'canonicalize';
import { type Hex, keccak256, stringToBytes } from 'viem';
import { z } from 'zod';
import {
  ACTIVATIONS,
  type Activation,
  type Layer,
  type TaskSpecV2,
  TaskSpecV2Schema,
} from '../protocol/spec.ts';
import type { HashRng } from './rng.ts';
import { BATCHES, LEARNING_RATES_Q16, MOMENTA_Q16, type SpecOptions, WEIGHT_DECAYS_Q24 } from './space.ts';

/** Conv output channels (ordinal, so a mutation steps ±1). */
export const CHANNELS = [4, 8, 12, 16, 24, 32, 48, 64] as const;
export const KERNELS = [1, 3, 5] as const;
/** Dense head widths (ordinal). */
export const DENSE_WIDTHS = [16, 32, 64, 128, 256] as const;
export const DOWNSAMPLES = ['maxpool', 'stride', 'none'] as const;
export const HEADS = ['gap', 'flatten'] as const;
export const MAX_STAGES = 3;
export const MAX_CONVS = 3;
export const MAX_DENSE = 2;

export type Downsample = (typeof DOWNSAMPLES)[number];
export type Head = (typeof HEADS)[number];

export interface ConvGene {
  channels: number;
  kernel: number;
  activation: Activation;
  /** output = act(conv(x)) + x; needs stride 1 and the input's channel count. */
  residual: boolean;
}

export interface Stage {
  convs: ConvGene[];
  downsample: Downsample;
}

export interface DenseGene {
  units: number;
  activation: Activation;
}

export interface CnnArchitecture {
  stages: Stage[];
  head: Head;
  dense: DenseGene[];
  learningRateQ16: number;
  momentumQ16: number;
  weightDecayQ24: number;
  batch: number;
}

export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

/** The image problem an architecture is shaped for and its budgets. */
export interface CnnSpace {
  family: 'cnn';
  input: ImageShape;
  classes: number;
  /** Largest parameter count (weights + biases, classifier included). */
  maxParams: number;
  /** Largest forward multiply-accumulates per example: bounds a task's training time. */
  maxMacs: number;
}

export const DEFAULT_CNN_MAX_PARAMS = 100_000;
export const DEFAULT_CNN_MAX_MACS = 1_500_000;

const oneOf = <T extends number>(values: readonly T[], name: string) =>
  z
    .number()
    .int()
    .refine((v) => (values as readonly number[]).includes(v), `${name} must be one of ${values.join(', ')}`);

const ConvGeneSchema = z.strictObject({
  channels: oneOf(CHANNELS, 'channels'),
  kernel: oneOf(KERNELS, 'kernel'),
  activation: z.enum(ACTIVATIONS),
  residual: z.boolean(),
});

/** Validates grids and the stage/residual rules (not the budgets, which are per space). */
export const CnnArchitectureSchema = z
  .strictObject({
    stages: z
      .array(
        z.strictObject({
          convs: z.array(ConvGeneSchema).min(1).max(MAX_CONVS),
          downsample: z.enum(DOWNSAMPLES),
        }),
      )
      .min(1)
      .max(MAX_STAGES),
    head: z.enum(HEADS),
    dense: z
      .array(z.strictObject({ units: oneOf(DENSE_WIDTHS, 'units'), activation: z.enum(ACTIVATIONS) }))
      .max(MAX_DENSE),
    learningRateQ16: oneOf(LEARNING_RATES_Q16, 'learningRateQ16'),
    momentumQ16: oneOf(MOMENTA_Q16, 'momentumQ16'),
    weightDecayQ24: oneOf(WEIGHT_DECAYS_Q24, 'weightDecayQ24'),
    batch: oneOf(BATCHES, 'batch'),
  })
  .superRefine((arch, ctx) => {
    arch.stages.forEach((stage, s) => {
      if (stage.downsample === 'none' && s !== arch.stages.length - 1)
        ctx.addIssue({
          code: 'custom',
          path: ['stages', s, 'downsample'],
          message: 'only the last stage may have no downsample',
        });
    });
    forEachConv(arch, 1, (conv, at) => {
      if (conv.residual && !residualAllowed(conv, at))
        ctx.addIssue({
          code: 'custom',
          path: ['stages', at.stage, 'convs', at.index, 'residual'],
          message: 'a residual conv needs stride 1 and as many channels as its input',
        });
    });
  });

export function parseCnnArchitecture(input: unknown): CnnArchitecture {
  return CnnArchitectureSchema.parse(input);
}

interface ConvSite {
  stage: number;
  index: number;
  stride: 1 | 2;
  inChannels: number;
}

const strideOf = (stage: Stage, index: number): 1 | 2 =>
  stage.downsample === 'stride' && index === stage.convs.length - 1 ? 2 : 1;

const residualAllowed = (conv: ConvGene, at: ConvSite) => at.stride === 1 && at.inChannels === conv.channels;

/** Visits every conv in order with its stage, index in the stage, stride and input channels. */
function forEachConv(
  arch: Pick<CnnArchitecture, 'stages'>,
  inputChannels: number,
  visit: (conv: ConvGene, at: ConvSite) => void,
): void {
  let inChannels = inputChannels;
  arch.stages.forEach((stage, s) => {
    stage.convs.forEach((conv, i) => {
      visit(conv, { stage: s, index: i, stride: strideOf(stage, i), inChannels });
      inChannels = conv.channels;
    });
  });
}

/** RFC 8785 JSON of the architecture: the canonical encoding. */
export function canonicalCnnArchitecture(arch: CnnArchitecture): string {
  const text = canonicalize(CnnArchitectureSchema.parse(arch));
  if (text === undefined) throw new Error('architecture cannot be canonicalized');
  return text;
}

/** keccak256 of the canonical encoding: the architecture's identity. */
export function cnnArchitectureHash(arch: CnnArchitecture): Hex {
  return keccak256(stringToBytes(canonicalCnnArchitecture(arch)));
}

/** The v2 model layers (the classifier is implied after them). */
export function cnnLayers(arch: CnnArchitecture): Layer[] {
  const layers: Layer[] = [];
  for (const stage of arch.stages) {
    stage.convs.forEach((conv, i) => {
      layers.push({ op: 'conv', ...conv, stride: strideOf(stage, i) } as Layer);
    });
    if (stage.downsample === 'maxpool') layers.push({ op: 'maxpool' });
  }
  layers.push({ op: arch.head });
  for (const d of arch.dense) layers.push({ op: 'dense', ...d, residual: false });
  return layers;
}

const convOut = (n: number, kernel: number, stride: number) =>
  Math.floor((n + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;

export interface CnnCounts {
  params: number;
  /** Forward multiply-accumulates of one example. */
  macs: number;
  /** Largest activation tensor of one example (elements). */
  maxActivations: number;
}

/**
 * Exact counts over the integer model's weight layers (docs/SEARCH.md):
 *   conv  (Cin → Cout, k×k, output H'×W'):  params Cin·k²·Cout + Cout,  MACs H'·W'·Cout·Cin·k²
 *   dense / classifier (K → N):             params K·N + N,             MACs K·N
 * Max-pool, average pool, biases, activations and residual adds are not MACs (they are O(activations)).
 */
export function cnnCounts(space: Pick<CnnSpace, 'input' | 'classes'>, arch: CnnArchitecture): CnnCounts {
  let { channels, height, width } = space.input;
  let params = 0;
  let macs = 0;
  let maxActivations = channels * height * width;
  const see = (n: number) => {
    maxActivations = Math.max(maxActivations, n);
  };
  for (const stage of arch.stages) {
    stage.convs.forEach((conv, i) => {
      const stride = strideOf(stage, i);
      height = convOut(height, conv.kernel, stride);
      width = convOut(width, conv.kernel, stride);
      const fanIn = channels * conv.kernel * conv.kernel;
      params += fanIn * conv.channels + conv.channels;
      macs += height * width * conv.channels * fanIn;
      channels = conv.channels;
      see(channels * height * width);
    });
    if (stage.downsample === 'maxpool') {
      height = Math.floor(height / 2);
      width = Math.floor(width / 2);
    }
  }
  let units = arch.head === 'gap' ? channels : channels * height * width;
  for (const n of [...arch.dense.map((d) => d.units), space.classes]) {
    params += units * n + n;
    macs += units * n;
    see(n);
    units = n;
  }
  return { params, macs, maxActivations };
}

/** FLOPs of one example's forward pass: 2 × MACs (the MLP space's convention). */
export function cnnFlopCount(space: Pick<CnnSpace, 'input' | 'classes'>, arch: CnnArchitecture): number {
  return 2 * cnnCounts(space, arch).macs;
}

export function cnnParamCount(space: Pick<CnnSpace, 'input' | 'classes'>, arch: CnnArchitecture): number {
  return cnnCounts(space, arch).params;
}

/** Within the parameter and MAC budgets, and a shape the v2 schema accepts. */
export function cnnWithinBudget(space: CnnSpace, arch: CnnArchitecture): boolean {
  const c = cnnCounts(space, arch);
  return c.params <= space.maxParams && c.macs <= space.maxMacs && shapesFit(space, arch);
}

/**
 * The v2 schema accepts the model: every max-pool has at least 2×2 to pool and no activation tensor
 * exceeds the cap (checked on a minimal spec, since the shape rule is a whole-spec refinement).
 */
function shapesFit(space: Pick<CnnSpace, 'input' | 'classes'>, arch: CnnArchitecture): boolean {
  return TaskSpecV2Schema.safeParse(toCnnTaskSpecUnchecked(PROBE_TRACK(space), arch, PROBE_OPTIONS)).success;
}

const PROBE_OPTIONS: SpecOptions = { steps: 1, seed: 0 };
const PROBE_TRACK = (space: Pick<CnnSpace, 'input' | 'classes'>): CnnTrackInfo => ({
  name: 'probe',
  sha256: `0x${'0'.repeat(64)}`,
  input: space.input,
  classes: space.classes,
  validation: 1,
  splitSeed: 0,
});

export function defineCnnSpace(
  input: ImageShape,
  classes: number,
  maxParams = DEFAULT_CNN_MAX_PARAMS,
  maxMacs = DEFAULT_CNN_MAX_MACS,
): CnnSpace {
  const space: CnnSpace = { family: 'cnn', input, classes, maxParams, maxMacs };
  const smallest: CnnArchitecture = {
    stages: [
      {
        convs: [{ channels: CHANNELS[0], kernel: 1, activation: 'relu', residual: false }],
        downsample: 'none',
      },
    ],
    head: 'gap',
    dense: [],
    learningRateQ16: LEARNING_RATES_Q16[0],
    momentumQ16: MOMENTA_Q16[0],
    weightDecayQ24: WEIGHT_DECAYS_Q24[0],
    batch: BATCHES[0],
  };
  if (!cnnWithinBudget(space, smallest))
    throw new Error(
      `budget (${maxParams} params, ${maxMacs} MACs) is below the smallest model (${JSON.stringify(cnnCounts(space, smallest))})`,
    );
  return space;
}

// ------------------------------------------------------------------------------ the short code

const ACT_LETTER: Record<Activation, string> = { relu: 'r', leaky_relu: 'l', hardtanh: 'h', gelu: 'g' };
const LETTER_ACT = Object.fromEntries(Object.entries(ACT_LETTER).map(([a, l]) => [l, a])) as Record<
  string,
  Activation
>;
const DOWN_SUFFIX: Record<Downsample, string> = { maxpool: '.mp', stride: '.s2', none: '' };

const fraction = (q: number, one: number) => (q === 0 ? '0' : `${q / one}`);

/**
 * A short readable code, e.g. `c8k3r-c8k3r+.mp c16k5g.s2 gap d64r lr=1/16 m=0.875 wd=2^-13 b=64`:
 * per stage its convs (`c{channels}k{kernel}{activation letter}`, `+` = residual) joined by `-` and
 * the downsample (`.mp` max-pool, `.s2` strided last conv, nothing for none); then `gap` or `flat`;
 * dense layers `d{units}{letter}`; then the hyper-parameters. Activation letters: r relu,
 * l leaky_relu, h hardtanh, g gelu. `parseCnnCode` reads it back.
 */
export function describeCnnArchitecture(arch: CnnArchitecture): string {
  const stages = arch.stages.map(
    (s) =>
      s.convs
        .map((c) => `c${c.channels}k${c.kernel}${ACT_LETTER[c.activation]}${c.residual ? '+' : ''}`)
        .join('-') + DOWN_SUFFIX[s.downsample],
  );
  const head = arch.head === 'gap' ? 'gap' : 'flat';
  const dense = arch.dense.map((d) => `d${d.units}${ACT_LETTER[d.activation]}`);
  const lr = `lr=1/${65536 / arch.learningRateQ16}`;
  const m = `m=${fraction(arch.momentumQ16, 65536)}`;
  const wd = arch.weightDecayQ24 === 0 ? 'wd=0' : `wd=2^${Math.log2(arch.weightDecayQ24 / 2 ** 24)}`;
  return [...stages, head, ...dense, lr, m, wd, `b=${arch.batch}`].join(' ');
}

/** Parses a code written by `describeCnnArchitecture`; throws naming the token it cannot read. */
export function parseCnnCode(code: string): CnnArchitecture {
  const tokens = code.trim().split(/\s+/);
  const headAt = tokens.findIndex((t) => t === 'gap' || t === 'flat');
  if (headAt < 1) throw new Error(`'${code}': expected stages, then gap or flat`);
  const bad = (t: string): never => {
    throw new Error(`cannot read '${t}' in '${code}'`);
  };
  const stages = tokens.slice(0, headAt).map((token): Stage => {
    const m = /^(.*?)(\.mp|\.s2)?$/.exec(token) ?? bad(token);
    const downsample: Downsample = m[2] === '.mp' ? 'maxpool' : m[2] === '.s2' ? 'stride' : 'none';
    const convs = m[1].split('-').map((c): ConvGene => {
      const g = /^c(\d+)k(\d)([rlhg])(\+?)$/.exec(c) ?? bad(c);
      return {
        channels: Number(g[1]),
        kernel: Number(g[2]),
        activation: LETTER_ACT[g[3]],
        residual: g[4] === '+',
      };
    });
    return { convs, downsample };
  });
  const rest = tokens.slice(headAt + 1);
  const dense: DenseGene[] = [];
  while (rest[0]?.startsWith('d')) {
    const t = rest.shift()!;
    const g = /^d(\d+)([rlhg])$/.exec(t) ?? bad(t);
    dense.push({ units: Number(g[1]), activation: LETTER_ACT[g[2]] });
  }
  const field = (name: string) => {
    const t = rest.shift() ?? bad(`<missing ${name}>`);
    if (!t.startsWith(`${name}=`)) bad(t);
    return t.slice(name.length + 1);
  };
  const lr = /^1\/(\d+)$/.exec(field('lr')) ?? bad('lr');
  const momentum = Number(field('m'));
  const wdText = field('wd');
  const wd = wdText === '0' ? 0 : 2 ** (24 + Number((/^2\^(-?\d+)$/.exec(wdText) ?? bad(wdText))[1]));
  const batch = Number(field('b'));
  if (rest.length > 0) bad(rest[0]);
  return parseCnnArchitecture({
    stages,
    head: tokens[headAt] === 'gap' ? 'gap' : 'flatten',
    dense,
    learningRateQ16: 65536 / Number(lr[1]),
    momentumQ16: momentum * 65536,
    weightDecayQ24: wd,
    batch,
  });
}

// ------------------------------------------------------------------------------ sampling

/** Drops residual flags that channels or strides no longer allow (after a change elsewhere). */
function repairResiduals(arch: CnnArchitecture, inputChannels: number): CnnArchitecture {
  const stages = arch.stages.map((s) => ({ ...s, convs: s.convs.map((c) => ({ ...c })) }));
  const out = { ...arch, stages };
  forEachConv(out, inputChannels, (conv, at) => {
    if (conv.residual && !residualAllowed(conv, at)) conv.residual = false;
  });
  return out;
}

function sampleConv(rng: HashRng, inChannels: number, stride: number): ConvGene {
  const channels = rng.pick(CHANNELS);
  const residual = stride === 1 && channels === inChannels && rng.chance(1, 2);
  return { channels, kernel: rng.pick(KERNELS), activation: rng.pick(ACTIVATIONS), residual };
}

function sampleStage(rng: HashRng, inChannels: number, last: boolean): Stage {
  const downsample = rng.pick(last ? DOWNSAMPLES : DOWNSAMPLES.slice(0, 2));
  const count = 1 + rng.int(MAX_CONVS);
  const convs: ConvGene[] = [];
  let c = inChannels;
  for (let i = 0; i < count; i++) {
    const stride = downsample === 'stride' && i === count - 1 ? 2 : 1;
    // Repeat the previous width half the time so residual blocks are common, not rare.
    const conv =
      i > 0 && rng.chance(1, 2) ? { ...sampleConv(rng, c, stride), channels: c } : sampleConv(rng, c, stride);
    if (conv.residual && (stride !== 1 || conv.channels !== c)) conv.residual = false;
    if (!conv.residual && stride === 1 && conv.channels === c) conv.residual = rng.chance(1, 2);
    convs.push(conv);
    c = conv.channels;
  }
  return { convs, downsample };
}

const sampleDense = (rng: HashRng): DenseGene => ({
  units: rng.pick(DENSE_WIDTHS),
  activation: rng.pick(ACTIVATIONS),
});

/** One architecture drawn from the grids (stages, then head, then hyper-parameters), within budget. */
export function sampleCnnArchitecture(space: CnnSpace, rng: HashRng): CnnArchitecture {
  for (;;) {
    const count = 1 + rng.int(MAX_STAGES);
    const stages: Stage[] = [];
    let c = space.input.channels;
    for (let s = 0; s < count; s++) {
      const stage = sampleStage(rng, c, s === count - 1);
      stages.push(stage);
      c = stage.convs[stage.convs.length - 1].channels;
    }
    const arch: CnnArchitecture = {
      stages,
      head: rng.pick(HEADS),
      dense: Array.from({ length: rng.int(MAX_DENSE + 1) }, () => sampleDense(rng)),
      learningRateQ16: rng.pick(LEARNING_RATES_Q16),
      momentumQ16: rng.pick(MOMENTA_Q16),
      weightDecayQ24: rng.pick(WEIGHT_DECAYS_Q24),
      batch: rng.pick(BATCHES),
    };
    if (cnnWithinBudget(space, arch)) return arch;
  }
}

// ------------------------------------------------------------------------------ mutation

export const CNN_MUTATIONS = [
  'channels',
  'kernel',
  'conv-activation',
  'residual',
  'add-conv',
  'remove-conv',
  'downsample',
  'add-stage',
  'remove-stage',
  'head',
  'dense-width',
  'dense-activation',
  'add-dense',
  'remove-dense',
  'learning-rate',
  'momentum',
  'weight-decay',
  'batch',
] as const;
export type CnnMutationKind = (typeof CNN_MUTATIONS)[number];

export interface CnnMutation {
  arch: CnnArchitecture;
  kind: CnnMutationKind;
  /** Stage the change applies to (conv and stage changes). */
  stage?: number;
  /** Conv index within the stage, or dense layer index. */
  index?: number;
}

function neighbour<T extends number>(grid: readonly T[], value: number, rng: HashRng): T {
  const i = grid.indexOf(value as T);
  if (i === 0) return grid[1];
  if (i === grid.length - 1) return grid[i - 1];
  return grid[rng.chance(1, 2) ? i + 1 : i - 1];
}

function convSites(arch: CnnArchitecture, inputChannels: number): ConvSite[] {
  const sites: ConvSite[] = [];
  forEachConv(arch, inputChannels, (_, at) => {
    sites.push(at);
  });
  return sites;
}

function applicable(arch: CnnArchitecture, inputChannels: number): CnnMutationKind[] {
  const sites = convSites(arch, inputChannels);
  const convAt = (s: ConvSite) => arch.stages[s.stage].convs[s.index];
  const canResidual = sites.some((s) => residualAllowed(convAt(s), s));
  return CNN_MUTATIONS.filter((k) => {
    switch (k) {
      case 'residual':
        return canResidual;
      case 'add-conv':
        return arch.stages.some((s) => s.convs.length < MAX_CONVS);
      case 'remove-conv':
        return arch.stages.some((s) => s.convs.length > 1);
      case 'add-stage':
        return arch.stages.length < MAX_STAGES;
      case 'remove-stage':
        return arch.stages.length > 1;
      case 'dense-width':
      case 'dense-activation':
      case 'remove-dense':
        return arch.dense.length > 0;
      case 'add-dense':
        return arch.dense.length < MAX_DENSE;
      default:
        return true;
    }
  });
}

const cloneArch = (a: CnnArchitecture): CnnArchitecture => ({
  ...a,
  stages: a.stages.map((s) => ({ ...s, convs: s.convs.map((c) => ({ ...c })) })),
  dense: a.dense.map((d) => ({ ...d })),
});

function mutateOnce(
  arch: CnnArchitecture,
  kind: CnnMutationKind,
  rng: HashRng,
  inputChannels: number,
): CnnMutation {
  const a = cloneArch(arch);
  const repaired = (m: Omit<CnnMutation, 'arch'>): CnnMutation => ({
    ...m,
    arch: repairResiduals(a, inputChannels),
  });
  const anyConv = () => {
    const sites = convSites(a, inputChannels);
    const site = rng.pick(sites);
    return { site, conv: a.stages[site.stage].convs[site.index] };
  };
  switch (kind) {
    case 'channels': {
      const { site, conv } = anyConv();
      conv.channels = neighbour(CHANNELS, conv.channels, rng);
      return repaired({ kind, stage: site.stage, index: site.index });
    }
    case 'kernel': {
      const { site, conv } = anyConv();
      conv.kernel = rng.pick(KERNELS.filter((k) => k !== conv.kernel));
      return repaired({ kind, stage: site.stage, index: site.index });
    }
    case 'conv-activation': {
      const { site, conv } = anyConv();
      conv.activation = rng.pick(ACTIVATIONS.filter((x) => x !== conv.activation));
      return { kind, stage: site.stage, index: site.index, arch: a };
    }
    case 'residual': {
      const sites = convSites(a, inputChannels).filter((s) =>
        residualAllowed(a.stages[s.stage].convs[s.index], s),
      );
      const site = rng.pick(sites);
      const conv = a.stages[site.stage].convs[site.index];
      conv.residual = !conv.residual;
      return { kind, stage: site.stage, index: site.index, arch: a };
    }
    case 'add-conv': {
      const s = rng.pick(a.stages.flatMap((st, i) => (st.convs.length < MAX_CONVS ? [i] : [])));
      const stage = a.stages[s];
      // Insert before a strided last conv so the stage still ends in its downsample.
      const slots = stage.downsample === 'stride' ? stage.convs.length : stage.convs.length + 1;
      const i = rng.int(slots);
      const inC = i > 0 ? stage.convs[i - 1].channels : s > 0 ? lastChannels(a.stages[s - 1]) : inputChannels;
      stage.convs.splice(i, 0, sampleConv(rng, inC, 1));
      return repaired({ kind, stage: s, index: i });
    }
    case 'remove-conv': {
      const s = rng.pick(a.stages.flatMap((st, i) => (st.convs.length > 1 ? [i] : [])));
      const i = rng.int(a.stages[s].convs.length);
      a.stages[s].convs.splice(i, 1);
      return repaired({ kind, stage: s, index: i });
    }
    case 'downsample': {
      const s = rng.int(a.stages.length);
      const last = s === a.stages.length - 1;
      const options = (last ? DOWNSAMPLES : DOWNSAMPLES.slice(0, 2)).filter(
        (d) => d !== a.stages[s].downsample,
      );
      a.stages[s].downsample = rng.pick(options);
      return repaired({ kind, stage: s });
    }
    case 'add-stage': {
      // A new last stage would leave a `none` stage in the middle: insert before it then.
      const lastIsNone = a.stages[a.stages.length - 1].downsample === 'none';
      const s = rng.int(a.stages.length + (lastIsNone ? 0 : 1));
      const inC = s > 0 ? lastChannels(a.stages[s - 1]) : inputChannels;
      a.stages.splice(s, 0, sampleStage(rng, inC, s === a.stages.length));
      return repaired({ kind, stage: s });
    }
    case 'remove-stage': {
      const s = rng.int(a.stages.length);
      a.stages.splice(s, 1);
      return repaired({ kind, stage: s });
    }
    case 'head':
      a.head = a.head === 'gap' ? 'flatten' : 'gap';
      return { kind, arch: a };
    case 'dense-width': {
      const i = rng.int(a.dense.length);
      a.dense[i].units = neighbour(DENSE_WIDTHS, a.dense[i].units, rng);
      return { kind, index: i, arch: a };
    }
    case 'dense-activation': {
      const i = rng.int(a.dense.length);
      a.dense[i].activation = rng.pick(ACTIVATIONS.filter((x) => x !== a.dense[i].activation));
      return { kind, index: i, arch: a };
    }
    case 'add-dense': {
      const i = rng.int(a.dense.length + 1);
      a.dense.splice(i, 0, sampleDense(rng));
      return { kind, index: i, arch: a };
    }
    case 'remove-dense': {
      const i = rng.int(a.dense.length);
      a.dense.splice(i, 1);
      return { kind, index: i, arch: a };
    }
    case 'learning-rate':
      return { kind, arch: { ...a, learningRateQ16: neighbour(LEARNING_RATES_Q16, a.learningRateQ16, rng) } };
    case 'momentum':
      return { kind, arch: { ...a, momentumQ16: neighbour(MOMENTA_Q16, a.momentumQ16, rng) } };
    case 'weight-decay':
      return { kind, arch: { ...a, weightDecayQ24: neighbour(WEIGHT_DECAYS_Q24, a.weightDecayQ24, rng) } };
    case 'batch':
      return { kind, arch: { ...a, batch: neighbour(BATCHES, a.batch, rng) } };
  }
}

const lastChannels = (stage: Stage) => stage.convs[stage.convs.length - 1].channels;

/**
 * One change to one thing: a conv's channels (one grid step), kernel, activation or residual flag; a
 * conv added to or removed from a stage; a stage's downsample; a stage added or removed; the head
 * (gap ↔ flatten); a dense layer's width (one step) or activation; a dense layer added or removed; or
 * one training hyper-parameter by one grid step. Residual flags the new shapes no longer allow are
 * dropped (a consequence, not a second choice). The result is valid, within budget, differs from the
 * parent, and is not rejected by `reject` (duplicates); undefined if no such change was found.
 */
export function mutateCnn(
  space: CnnSpace,
  parent: CnnArchitecture,
  rng: HashRng,
  reject: (arch: CnnArchitecture) => boolean = () => false,
  attempts = 64,
): CnnMutation | undefined {
  const kinds = applicable(parent, space.input.channels);
  const parentHash = cnnArchitectureHash(parent);
  for (let i = 0; i < attempts; i++) {
    const m = mutateOnce(parent, rng.pick(kinds), rng, space.input.channels);
    if (cnnWithinBudget(space, m.arch) && cnnArchitectureHash(m.arch) !== parentHash && !reject(m.arch))
      return m;
  }
  return undefined;
}

// ------------------------------------------------------------------------------ task specs

/** What a v2 TaskSpec needs besides the architecture: the dataset, its image shape and split. */
export interface CnnTrackInfo {
  /** Dataset name. */
  name: string;
  sha256: string;
  input: ImageShape;
  classes: number;
  validation: number;
  splitSeed: number;
}

function toCnnTaskSpecUnchecked(track: CnnTrackInfo, arch: CnnArchitecture, options: SpecOptions): unknown {
  return {
    v: 2,
    dataset: { name: track.name, sha256: track.sha256 },
    split: { seed: track.splitSeed, validation: track.validation },
    model: { input: track.input, classes: track.classes, layers: cnnLayers(arch) },
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
  };
}

/** Architecture + training budget + dataset → a validated v2 TaskSpec. */
export function toCnnTaskSpec(track: CnnTrackInfo, arch: CnnArchitecture, options: SpecOptions): TaskSpecV2 {
  return TaskSpecV2Schema.parse(toCnnTaskSpecUnchecked(track, arch, options));
}

/** The architecture a v2 spec trains; throws if the spec lies outside this search space. */
export function cnnArchitectureOf(spec: TaskSpecV2): CnnArchitecture {
  const stages: Stage[] = [];
  let convs: ConvGene[] = [];
  const close = (downsample: Downsample) => {
    if (convs.length === 0)
      throw new Error(`a ${downsample} with no conv before it is outside the conv space`);
    stages.push({ convs, downsample });
    convs = [];
  };
  let head: Head | undefined;
  const dense: DenseGene[] = [];
  for (const layer of spec.model.layers) {
    if (layer.op === 'conv') {
      if (head) throw new Error('a conv after gap/flatten');
      const { channels, kernel, activation, residual } = layer;
      convs.push({ channels, kernel, activation, residual });
      if (layer.stride === 2) close('stride');
    } else if (layer.op === 'maxpool') close('maxpool');
    else if (layer.op === 'gap' || layer.op === 'flatten') {
      if (convs.length > 0) close('none');
      head = layer.op;
    } else {
      if (layer.residual) throw new Error('a residual dense layer is outside the conv space');
      dense.push({ units: layer.units, activation: layer.activation });
    }
  }
  return parseCnnArchitecture({
    stages,
    head,
    dense,
    learningRateQ16: spec.training.learningRateQ16,
    momentumQ16: spec.training.momentumQ16,
    weightDecayQ24: spec.training.weightDecayQ24,
    batch: spec.training.batch,
  });
}
