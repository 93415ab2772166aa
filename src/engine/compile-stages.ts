/**
 * The first half of the plan compiler (./compile.ts): a spec's sequential model (plan.ts
 * `sequentialModel`: a v1 MLP is a flat input and dense layers, a v2 model an image input and
 * conv/pool/flatten/dense layers; the classifier last) as stages over activation tensors, with the
 * questions the lowering asks of them (who produces a tensor, which weight layer consumes it).
 * No ops here: ./compile.ts turns the stages into op invocations.
 */
import type { Shape } from '../protocol/spec.ts';
import type { ImageLayout } from './ops/image.ts';
import type { LayerPlan, ModelPlan, SequentialLayer } from './plan.ts';

/** An activation tensor of the forward pass (per example: `shape`; buffers hold `batch` examples). */
export interface Tensor {
  /** i32 Q16 buffer. */
  buf: string;
  shape: Shape;
  layout: ImageLayout;
  /** Stage that wrote it; null for the model input (the gathered pixels). */
  producer: Stage | null;
  /** A flatten's output without a transpose: the same memory as `alias`. */
  alias?: Tensor;
}

export interface WeightStage {
  kind: 'conv' | 'dense';
  index: number;
  w: LayerPlan;
  /** conv only: the geometry of the layer. */
  kernel: number;
  stride: number;
  input: Tensor;
  output: Tensor;
}
export interface PoolStage {
  kind: 'maxpool' | 'gap';
  index: number;
  input: Tensor;
  output: Tensor;
}
export interface FlattenStage {
  kind: 'flatten';
  index: number;
  input: Tensor;
  output: Tensor;
  /** hwc with more than one channel: the flatten permutes to chw (one transpose each way). */
  transposed: boolean;
}
export type Stage = WeightStage | PoolStage | FlattenStage;

export const isWeight = (s: Stage | null): s is WeightStage => s?.kind === 'conv' || s?.kind === 'dense';
export const isPool = (s: Stage): s is PoolStage => s.kind === 'maxpool' || s.kind === 'gap';

/** Elements per example. */
export const size = (s: Shape) => (s.kind === 'image' ? s.channels * s.height * s.width : s.units);

export const image = (s: Shape) => {
  if (s.kind !== 'image') throw new Error('expected an image shape');
  return s;
};

const convOut = (n: number, kernel: number, stride: number) =>
  Math.floor((n + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;

/**
 * The stages of a sequential model: stage i is layer i (its output buffer `h<i>`, its gradient
 * `g<i>`); weight stages take their LayerPlan in order.
 */
export function buildStages(input: Tensor, layers: readonly SequentialLayer[], model: ModelPlan): Stage[] {
  const stages: Stage[] = [];
  let t = input;
  let w = 0;
  for (const [index, layer] of layers.entries()) {
    const out = (shape: Shape, layout: ImageLayout): Tensor => ({
      buf: `h${index}`,
      shape,
      layout,
      producer: null,
    });
    let stage: Stage;
    if (layer.op === 'conv') {
      const plan = model.layers[w++];
      const s = image(t.shape);
      const shape: Shape = {
        kind: 'image',
        channels: plan.N,
        height: convOut(s.height, layer.kernel, layer.stride),
        width: convOut(s.width, layer.kernel, layer.stride),
      };
      const { kernel, stride } = layer;
      stage = { kind: 'conv', index, w: plan, kernel, stride, input: t, output: out(shape, 'hwc') };
    } else if (layer.op === 'dense' || layer.op === 'classifier') {
      const plan = model.layers[w++];
      const output = out({ kind: 'flat', units: plan.N }, 'hwc');
      stage = { kind: 'dense', index, w: plan, kernel: 1, stride: 1, input: t, output };
    } else if (layer.op === 'maxpool') {
      const s = image(t.shape);
      const shape: Shape = { ...s, height: Math.floor(s.height / 2), width: Math.floor(s.width / 2) };
      stage = { kind: 'maxpool', index, input: t, output: out(shape, t.layout) };
    } else if (layer.op === 'gap') {
      const output = out({ kind: 'flat', units: image(t.shape).channels }, 'chw');
      stage = { kind: 'gap', index, input: t, output };
    } else {
      const s = image(t.shape);
      const transposed = t.layout === 'hwc' && s.channels > 1;
      const flat: Shape = { kind: 'flat', units: size(s) };
      const output: Tensor = transposed
        ? out(flat, 'chw')
        : { buf: t.buf, shape: flat, layout: 'chw', producer: null, alias: t };
      stage = { kind: 'flatten', index, input: t, output, transposed };
    }
    stage.output.producer = stage;
    stages.push(stage);
    t = stage.output;
  }
  for (const s of stages) {
    if (!isWeight(s) || !s.w.residual || s.kind !== 'conv') continue;
    const a = s.input.alias ?? s.input;
    if (a.layout !== 'hwc' && image(a.shape).channels > 1)
      throw new Error('a residual first conv needs a one-channel input (its input is channel-major)');
  }
  return stages;
}

/** Queries over a model's stages. */
export class StageGraph {
  constructor(readonly stages: readonly Stage[]) {}

  /** The tensor behind aliases (an un-transposed flatten is the tensor it flattens). */
  source(t: Tensor): Tensor {
    return t.alias ? this.source(t.alias) : t;
  }

  /** The weight stage that reads `t` (looking through flatten), or null. */
  consumer(t: Tensor): WeightStage | null {
    const next = this.stages.find((s) => s.input === t);
    if (!next) return null;
    if (next.kind === 'flatten') return this.consumer(next.output);
    return isWeight(next) ? next : null;
  }

  /** Whether a stage's input is the model input (the gathered pixels), through any flatten. */
  readsPixels(s: Stage): boolean {
    return this.source(s.input).producer === null;
  }
}
