/**
 * Task specs: the wire format of a training microtask (DESIGN §2). v1 is a dense MLP; v2 a sequential
 * conv + dense model over images (docs/SPEC.md). Both stay accepted; `v` tells them apart.
 *
 * Every number is an integer; fractional hyper-parameters are fixed-point integers whose
 * scale is part of the field name (`learningRateQ16` = learning rate × 2^16).
 * The canonical form is RFC 8785 (JCS) JSON and `taskId = keccak256(utf8(canonical))`.
 */
import canonicalize from 'canonicalize';
import { type Hex, keccak256, stringToBytes } from 'viem';
import { z } from 'zod';

export const ACTIVATIONS = ['relu', 'leaky_relu', 'hardtanh', 'gelu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const int = () => z.number().int();
const u32 = () => int().min(0).max(0xffff_ffff);
const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/, 'expected 0x-prefixed lowercase 32-byte hex');

export const HiddenLayerSchema = z.strictObject({
  units: int().min(1).max(4096),
  activation: z.enum(ACTIVATIONS),
  /** Adds the layer's input to its output; needs equal width to the previous layer. */
  residual: z.boolean().default(false),
});

export const TaskSpecSchema = z
  .strictObject({
    v: z.literal(1),
    dataset: z.strictObject({
      name: z.string().min(1).max(64),
      /** sha256 of the dataset's canonical binary. */
      sha256: hex32,
    }),
    split: z.strictObject({
      seed: u32(),
      /** Number of examples held out for validation. */
      validation: int().min(1),
    }),
    model: z.strictObject({
      inputs: int().min(1).max(65536),
      classes: int().min(2).max(256),
      hidden: z.array(HiddenLayerSchema).max(8),
    }),
    training: z.strictObject({
      optimizer: z.literal('sgd'),
      batch: int().min(1).max(1024),
      steps: int().min(1).max(1_000_000),
      seed: u32(),
      /** Learning rate × 2^16, at most 2.0. */
      learningRateQ16: int()
        .min(0)
        .max(1 << 17),
      /** Momentum × 2^16, in [0, 1]. */
      momentumQ16: int()
        .min(0)
        .max(1 << 16),
      /** L2 weight decay × 2^24, at most 1/16. */
      weightDecayQ24: int()
        .min(0)
        .max(1 << 20),
    }),
    /** A trace checkpoint is taken after every `checkpointEvery` steps and after the last step. */
    checkpointEvery: int().min(1),
  })
  .superRefine((spec, ctx) => {
    let width = spec.model.inputs;
    spec.model.hidden.forEach((layer, i) => {
      if (layer.residual && layer.units !== width) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'hidden', i, 'residual'],
          message: `residual layer ${i} needs ${width} units (its input width), has ${layer.units}`,
        });
      }
      width = layer.units;
    });
  });

export type TaskSpec = z.infer<typeof TaskSpecSchema>;
export type TaskSpecV1 = TaskSpec;
export type HiddenLayer = z.infer<typeof HiddenLayerSchema>;

// ------------------------------------------------------------------------------------------ v2

const DatasetRefSchema = TaskSpecSchema.shape.dataset;
const SplitSchema = TaskSpecSchema.shape.split;
const TrainingSchema = TaskSpecSchema.shape.training;

/**
 * 2-D convolution, zero padding ⌊kernel/2⌋ on each side ("same" at stride 1), then the activation.
 * Output size per axis: ⌊(n + 2·pad − kernel) / stride⌋ + 1.
 */
export const ConvLayerSchema = z.strictObject({
  op: z.literal('conv'),
  channels: int().min(1).max(256),
  kernel: z.union([z.literal(1), z.literal(3), z.literal(5)]),
  stride: z.union([z.literal(1), z.literal(2)]),
  activation: z.enum(ACTIVATIONS),
  /** Adds the layer's input to its output; needs stride 1 and as many channels as its input. */
  residual: z.boolean().default(false),
});
/** 2×2 max-pool, stride 2; an odd last row or column is dropped (output ⌊n/2⌋). */
export const MaxPoolLayerSchema = z.strictObject({ op: z.literal('maxpool') });
/** Global average pool: [C][H][W] → [C] (the end of the spatial part). */
export const GapLayerSchema = z.strictObject({ op: z.literal('gap') });
/** [C][H][W] → [C·H·W] in that (channel-major) order (the end of the spatial part). */
export const FlattenLayerSchema = z.strictObject({ op: z.literal('flatten') });
/** A dense hidden layer, as in v1. */
export const DenseLayerSchema = z.strictObject({
  op: z.literal('dense'),
  units: int().min(1).max(4096),
  activation: z.enum(ACTIVATIONS),
  residual: z.boolean().default(false),
});
export const LayerSchema = z.discriminatedUnion('op', [
  ConvLayerSchema,
  MaxPoolLayerSchema,
  GapLayerSchema,
  FlattenLayerSchema,
  DenseLayerSchema,
]);
export type ConvLayer = z.infer<typeof ConvLayerSchema>;
export type DenseLayer = z.infer<typeof DenseLayerSchema>;
export type Layer = z.infer<typeof LayerSchema>;

/** The shape of one example's activations: an image [channels][height][width] or a flat vector. */
export type Shape =
  | { kind: 'image'; channels: number; height: number; width: number }
  | { kind: 'flat'; units: number };

/** Largest activation tensor per example (elements) a v2 model may have. */
export const MAX_ACTIVATIONS = 1 << 16;

export const TaskSpecV2Schema = z
  .strictObject({
    v: z.literal(2),
    dataset: DatasetRefSchema,
    split: SplitSchema,
    model: z.strictObject({
      /** The dataset's features read as [channels][height][width] (channel-major, row-major). */
      input: z.strictObject({
        channels: int().min(1).max(16),
        height: int().min(1).max(256),
        width: int().min(1).max(256),
      }),
      classes: int().min(2).max(256),
      /** Conv/maxpool layers, then exactly one gap or flatten, then dense layers; the classifier is implied. */
      layers: z.array(LayerSchema).max(32),
    }),
    training: TrainingSchema,
    checkpointEvery: int().min(1),
  })
  .superRefine((spec, ctx) => {
    const problem = layerShapesProblem(spec.model);
    if (problem)
      ctx.addIssue({ code: 'custom', path: ['model', 'layers', problem.index], message: problem.message });
  });

export type TaskSpecV2 = z.infer<typeof TaskSpecV2Schema>;
export type ModelV2 = TaskSpecV2['model'];

/** Any accepted spec version. */
export type AnyTaskSpec = TaskSpec | TaskSpecV2;
export const AnyTaskSpecSchema = z.union([TaskSpecSchema, TaskSpecV2Schema]);

function outSize(n: number, kernel: number, stride: number): number {
  return Math.floor((n + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;
}

/** The output shape of one layer for a given input shape, or a message saying why it does not fit. */
export function layerOutputShape(layer: Layer, input: Shape): Shape | string {
  switch (layer.op) {
    case 'conv': {
      if (input.kind !== 'image') return 'conv needs an image input (it comes after gap/flatten)';
      const out: Shape = {
        kind: 'image',
        channels: layer.channels,
        height: outSize(input.height, layer.kernel, layer.stride),
        width: outSize(input.width, layer.kernel, layer.stride),
      };
      if (layer.residual && (layer.stride !== 1 || layer.channels !== input.channels))
        return `residual conv needs stride 1 and ${input.channels} channels (its input's)`;
      return out;
    }
    case 'maxpool':
      if (input.kind !== 'image') return 'maxpool needs an image input (it comes after gap/flatten)';
      if (input.height < 2 || input.width < 2)
        return `maxpool needs at least 2×2, has ${input.height}×${input.width}`;
      return { ...input, height: Math.floor(input.height / 2), width: Math.floor(input.width / 2) };
    case 'gap':
      if (input.kind !== 'image') return 'gap needs an image input';
      return { kind: 'flat', units: input.channels };
    case 'flatten':
      if (input.kind !== 'image') return 'flatten needs an image input';
      return { kind: 'flat', units: input.channels * input.height * input.width };
    case 'dense':
      if (input.kind !== 'flat') return 'dense needs a flat input: put gap or flatten before it';
      if (layer.residual && layer.units !== input.units)
        return `residual dense needs ${input.units} units (its input width), has ${layer.units}`;
      return { kind: 'flat', units: layer.units };
  }
}

function shapeSize(s: Shape): number {
  return s.kind === 'image' ? s.channels * s.height * s.width : s.units;
}

function layerShapesProblem(model: ModelV2): { index: number; message: string } | undefined {
  let shape: Shape = { kind: 'image', ...model.input };
  for (const [index, layer] of model.layers.entries()) {
    const out = layerOutputShape(layer, shape);
    if (typeof out === 'string') return { index, message: out };
    if (shapeSize(out) > MAX_ACTIVATIONS)
      return { index, message: `${shapeSize(out)} activations per example, at most ${MAX_ACTIVATIONS}` };
    shape = out;
  }
  if (shape.kind !== 'flat')
    return {
      index: model.layers.length,
      message: 'the layers must end flat: add gap or flatten before the classifier',
    };
  return undefined;
}

/**
 * Output shape of every layer of a v2 model (index i = after layer i), the classifier's input last.
 * Throws on a model the schema would reject.
 */
export function layerShapes(model: ModelV2): Shape[] {
  const shapes: Shape[] = [];
  let shape: Shape = { kind: 'image', ...model.input };
  for (const [index, layer] of model.layers.entries()) {
    const out = layerOutputShape(layer, shape);
    if (typeof out === 'string') throw new Error(`layer ${index} (${layer.op}): ${out}`);
    shapes.push(out);
    shape = out;
  }
  return shapes;
}

/** Parses and validates an untrusted v1 spec; throws a ZodError that names every bad field. */
export function parseTaskSpec(input: unknown): TaskSpec {
  return TaskSpecSchema.parse(input);
}

/** Parses and validates an untrusted spec of any version (by its `v`); throws a ZodError naming every bad field. */
export function parseAnyTaskSpec(input: unknown): AnyTaskSpec {
  const v = (input as { v?: unknown } | null)?.v;
  return v === 2 ? TaskSpecV2Schema.parse(input) : TaskSpecSchema.parse(input);
}

export function isV2(spec: AnyTaskSpec): spec is TaskSpecV2 {
  return spec.v === 2;
}

/** RFC 8785 canonical JSON of a validated spec (defaults filled in, so equal specs hash equal). */
export function canonicalSpec(spec: AnyTaskSpec): string {
  const text = canonicalize(parseAnyTaskSpec(spec));
  if (text === undefined) throw new Error('spec cannot be canonicalized');
  return text;
}

export function taskIdOf(spec: AnyTaskSpec): Hex {
  return keccak256(stringToBytes(canonicalSpec(spec)));
}
