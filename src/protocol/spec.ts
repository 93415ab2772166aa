/**
 * Task spec v1: the wire format of a training microtask (DESIGN §2).
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
export type HiddenLayer = z.infer<typeof HiddenLayerSchema>;

/** Parses and validates untrusted input; throws a ZodError that names every bad field. */
export function parseTaskSpec(input: unknown): TaskSpec {
  return TaskSpecSchema.parse(input);
}

/** RFC 8785 canonical JSON of a validated spec (defaults filled in, so equal specs hash equal). */
export function canonicalSpec(spec: TaskSpec): string {
  const text = canonicalize(TaskSpecSchema.parse(spec));
  if (text === undefined) throw new Error('spec cannot be canonicalized');
  return text;
}

export function taskIdOf(spec: TaskSpec): Hex {
  return keccak256(stringToBytes(canonicalSpec(spec)));
}
