/**
 * Everything about a task that is decided on the CPU for every backend, then uploaded: the
 * parameter layout, the initial weights, the train/validation split and the per-step batches
 * (docs/ARITHMETIC.md, "Data" and "Initialisation").
 */
import {
  type Activation,
  type AnyTaskSpec,
  isV2,
  type Layer,
  layerOutputShape,
  type Shape,
  type TaskSpec,
} from '../protocol/spec.ts';
import { isqrt } from './ops/fixed.ts';
import { permutation, rand, rngKey, TENSOR } from './ops/rng.ts';
import type { Dataset } from './types.ts';

/**
 * One weight layer: W [K][N] at wOffset, b [N] at bOffset in the flat parameter vector. A conv
 * layer's W is [C_in·k·k][C_out] (row (c·k + ky)·k + kx), so it is initialised and stored as a
 * dense layer with K = its fan-in.
 */
export interface LayerPlan {
  index: number;
  kind: 'dense' | 'conv';
  K: number;
  N: number;
  /** null for the output layer (logits are z). */
  activation: Activation | null;
  /** Output = act(z) + input (hidden layers with K = N only). */
  residual: boolean;
  wOffset: number;
  bOffset: number;
}

export interface ModelPlan {
  layers: LayerPlan[];
  paramCount: number;
}

/** A layer of a sequential model: a spec layer, or the classifier every model ends with. */
export type SequentialLayer = Layer | { op: 'classifier' };

/**
 * Every spec as one sequential model: an input shape and layers, the classifier last. A v1 MLP is
 * a flat input and its hidden layers as dense layers; a v2 model is its image input and layers.
 * The plan compiler (./compile.ts) and the parameter layout below read only this.
 */
export function sequentialModel(spec: AnyTaskSpec): { input: Shape; layers: SequentialLayer[] } {
  const classifier = { op: 'classifier' } as const;
  if (isV2(spec))
    return { input: { kind: 'image', ...spec.model.input }, layers: [...spec.model.layers, classifier] };
  const dense = spec.model.hidden.map(
    (h): Layer => ({ op: 'dense', units: h.units, activation: h.activation, residual: h.residual }),
  );
  return { input: { kind: 'flat', units: spec.model.inputs }, layers: [...dense, classifier] };
}

/** The weight layers of a spec in canonical order (each conv, each dense, then the classifier). */
export function modelPlan(spec: AnyTaskSpec): ModelPlan {
  const layers: LayerPlan[] = [];
  let offset = 0;
  const add = (
    K: number,
    N: number,
    activation: Activation | null,
    residual: boolean,
    kind: LayerPlan['kind'],
  ) => {
    layers.push({
      index: layers.length,
      kind,
      K,
      N,
      activation,
      residual,
      wOffset: offset,
      bOffset: offset + K * N,
    });
    offset += K * N + N;
  };
  const model = sequentialModel(spec);
  let shape = model.input;
  for (const layer of model.layers) {
    if (layer.op === 'classifier') {
      if (shape.kind !== 'flat') throw new Error('a model must end flat (gap or flatten)');
      add(shape.units, spec.model.classes, null, false, 'dense');
      break;
    }
    if (layer.op === 'conv' && shape.kind === 'image')
      add(
        shape.channels * layer.kernel * layer.kernel,
        layer.channels,
        layer.activation,
        layer.residual,
        'conv',
      );
    else if (layer.op === 'dense' && shape.kind === 'flat')
      add(shape.units, layer.units, layer.activation, layer.residual, 'dense');
    const out = layerOutputShape(layer, shape);
    if (typeof out === 'string') throw new Error(`layer ${layer.op}: ${out}`);
    shape = out;
  }
  return { layers, paramCount: offset };
}

/**
 * Initial parameters (Q24): W uniform on [−a, a), a = √(6/K), from the hash RNG; biases 0.
 *   aQ16 = isqrt(⌊6·2^32 / K⌋);  c = (rand >> 8) − 2^23;  W = ⌊c · 2·aQ16 / 2^16⌋
 */
export function initialParams(spec: AnyTaskSpec, model = modelPlan(spec)): Int32Array {
  const params = new Int32Array(model.paramCount);
  for (const layer of model.layers) {
    const aQ16 = isqrt(Math.floor((6 * 2 ** 32) / layer.K));
    const key = rngKey(spec.training.seed, 0, TENSOR.initW(layer.index));
    for (let i = 0; i < layer.K * layer.N; i++) {
      const c = (rand(key, i) >>> 8) - 2 ** 23;
      params[layer.wOffset + i] = Math.floor((c * 2 * aQ16) / 2 ** 16);
    }
  }
  return params;
}

/** Throws a clear error when the dataset is not the one the spec names or does not fit the model. */
/** Features per example the model reads (v2: channels · height · width). */
export function inputFeatures(spec: AnyTaskSpec): number {
  if (!isV2(spec)) return spec.model.inputs;
  const { channels, height, width } = spec.model.input;
  return channels * height * width;
}

export function checkDataset(spec: AnyTaskSpec, dataset: Dataset): void {
  const problems: string[] = [];
  if (dataset.name !== spec.dataset.name)
    problems.push(`name is '${dataset.name}', spec says '${spec.dataset.name}'`);
  if (dataset.sha256 !== spec.dataset.sha256) {
    problems.push(`sha256 is ${dataset.sha256}, spec says ${spec.dataset.sha256}`);
  }
  if (dataset.features !== inputFeatures(spec)) {
    problems.push(`${dataset.features} features, model has ${inputFeatures(spec)} inputs`);
  }
  if (dataset.classes !== spec.model.classes) {
    problems.push(`${dataset.classes} classes, model has ${spec.model.classes}`);
  }
  if (spec.split.validation >= dataset.count) {
    problems.push(`validation ${spec.split.validation} leaves no training examples of ${dataset.count}`);
  }
  if (problems.length > 0) throw new Error(`dataset does not match the spec: ${problems.join('; ')}`);
}

/** Indices sorted by (rand(key(split.seed, 0, SPLIT), i), i): validation first, then training. */
export function splitIndices(
  spec: AnyTaskSpec,
  count: number,
): { train: Uint32Array; validation: Uint32Array } {
  const order = permutation(rngKey(spec.split.seed, 0, TENSOR.SPLIT), count);
  return {
    validation: order.subarray(0, spec.split.validation),
    train: order.subarray(spec.split.validation),
  };
}

export interface TrainingPlan {
  model: ModelPlan;
  train: Uint32Array;
  validation: Uint32Array;
  /** Dataset indices of step t's batch (0-based step), `batch` entries. */
  batchIndices(step: number, out?: Uint32Array): Uint32Array;
  /** Batches of steps [from, to) concatenated: (to − from) · batch indices, for upload. */
  batchRange(from: number, to: number): Uint32Array;
}

export function trainingPlan(spec: AnyTaskSpec, dataset: Dataset): TrainingPlan {
  checkDataset(spec, dataset);
  const model = modelPlan(spec);
  const { train, validation } = splitIndices(spec, dataset.count);
  const T = train.length;
  const B = spec.training.batch;
  const epochs = new Map<number, Uint32Array>();
  const epochOrder = (e: number): Uint32Array => {
    let order = epochs.get(e);
    if (!order) {
      const perm = permutation(rngKey(spec.training.seed, e, TENSOR.DATA_ORDER), T);
      order = new Uint32Array(T);
      for (let j = 0; j < T; j++) order[j] = train[perm[j]];
      if (epochs.size >= 4) epochs.delete(epochs.keys().next().value as number);
      epochs.set(e, order);
    }
    return order;
  };
  const batchIndices = (step: number, out = new Uint32Array(B)): Uint32Array => {
    for (let i = 0; i < B; i++) {
      const p = step * B + i;
      out[i] = epochOrder(Math.floor(p / T))[p % T];
    }
    return out;
  };
  const batchRange = (from: number, to: number): Uint32Array => {
    const out = new Uint32Array((to - from) * B);
    for (let t = from; t < to; t++) batchIndices(t, out.subarray((t - from) * B, (t - from + 1) * B));
    return out;
  };
  return { model, train, validation, batchIndices, batchRange };
}

/** Final parameters as floats (value = n / 2^24) per layer, for ONNX export. */
export function dequantizeParams(
  spec: TaskSpec,
  params: Int32Array,
): {
  K: number;
  N: number;
  activation: Activation | null;
  residual: boolean;
  W: Float32Array;
  b: Float32Array;
}[] {
  return modelPlan(spec).layers.map((l) => {
    const W = new Float32Array(l.K * l.N);
    const b = new Float32Array(l.N);
    for (let i = 0; i < W.length; i++) W[i] = params[l.wOffset + i] / 2 ** 24;
    for (let i = 0; i < b.length; i++) b[i] = params[l.bOffset + i] / 2 ** 24;
    return { K: l.K, N: l.N, activation: l.activation, residual: l.residual, W, b };
  });
}
