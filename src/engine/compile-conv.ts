/**
 * The plan rules of spec v2 (sequential conv + dense over images), on top of the v1 compiler's
 * helpers: each layer becomes a few op invocations (docs/ARITHMETIC.md, "Convolutional layers").
 *
 *   conv     im2col (x's RNE quantisation fused) · quantised W → forward epilogue   (hwc out)
 *            backward: quantize gz, Pᵀ·e, sgd | e·Wᵀ, col2im-backward (col2im + backward epilogue fused)
 *   maxpool  maxpool (value + argmax)          backward: maxpool-backward (act′ of its input's layer fused)
 *   gap      gap                               backward: gap-backward (likewise)
 *   flatten  transpose hwc → chw (none when the input is chw or has one channel); in the backward the
 *            dense layer after it transposes its input gradient back before its epilogue
 *   dense    as v1; the classifier is a dense layer without activation after the last layer
 *
 * Slots: as v1, four per weight layer [x, e, w, wNext] and the validation x, w; then one junk slot
 * that max-abs folds nobody reads go to (the gz of a pool's input when no weight layer needs it).
 */
import { isV2, type Shape, type TaskSpecV2 } from '../protocol/spec.ts';
import { Compiler } from './compile-mlp.ts';
import type { ImageLayout } from './ops/image.ts';
import { NONE, OPS } from './ops/index.ts';
import { TENSOR } from './ops/rng.ts';
import type { LayerPlan, TrainingPlan } from './plan.ts';
import type { Invocation, Program, StateRange } from './program.ts';
import type { Dataset } from './types.ts';

/** An activation tensor of the forward pass (per example: `shape`; buffers hold `batch` examples). */
interface Tensor {
  /** i32 Q16 buffer. */
  buf: string;
  shape: Shape;
  layout: ImageLayout;
  /** Stage that wrote it; null for the pixel input. */
  producer: Stage | null;
  /** A flatten's output without a transpose: the same memory as `of`. */
  alias?: Tensor;
}

interface WeightStage {
  kind: 'conv' | 'dense';
  index: number;
  w: LayerPlan;
  input: Tensor;
  output: Tensor;
}
interface PoolStage {
  kind: 'maxpool' | 'gap';
  index: number;
  input: Tensor;
  output: Tensor;
}
interface FlattenStage {
  kind: 'flatten';
  index: number;
  input: Tensor;
  output: Tensor;
  transposed: boolean;
}
type Stage = WeightStage | PoolStage | FlattenStage;

const isWeight = (s: Stage | null): s is WeightStage => s?.kind === 'conv' || s?.kind === 'dense';

const size = (s: Shape) => (s.kind === 'image' ? s.channels * s.height * s.width : s.units);
const image = (s: Shape) => {
  if (s.kind !== 'image') throw new Error('expected an image shape');
  return s;
};

export class CompilerV2 extends Compiler {
  readonly stages: Stage[] = [];
  readonly input: Tensor;
  readonly junk: number;
  readonly v2: TaskSpecV2;

  constructor(spec: TaskSpecV2, dataset: Dataset, plan: TrainingPlan, stepsPerUpload: number) {
    super(spec, dataset, plan, stepsPerUpload);
    this.v2 = spec;
    this.junk = 6 * this.L;
    this.input = {
      buf: 'input',
      shape: { kind: 'image', ...spec.model.input },
      layout: 'chw',
      producer: null,
    };
    this.buildStages();
  }

  /** The layer list as stages over tensors, the classifier appended. */
  private buildStages(): void {
    let t = this.input;
    let w = 0;
    const layers = [...this.v2.model.layers, { op: 'classifier' as const }];
    for (const [index, layer] of layers.entries()) {
      const out = (shape: Shape, layout: ImageLayout): Tensor => ({
        buf: `h${index}`,
        shape,
        layout,
        producer: null,
      });
      let stage: Stage;
      if (layer.op === 'conv' || layer.op === 'dense' || layer.op === 'classifier') {
        const plan = this.layers[w++];
        const kind = layer.op === 'conv' ? 'conv' : 'dense';
        const shape: Shape =
          kind === 'conv'
            ? {
                kind: 'image',
                channels: plan.N,
                ...this.convOut(image(t.shape), layer as { kernel: number; stride: number }),
              }
            : { kind: 'flat', units: plan.N };
        stage = { kind, index, w: plan, input: t, output: out(shape, 'hwc') };
      } else if (layer.op === 'maxpool') {
        const s = image(t.shape);
        const shape: Shape = { ...s, height: Math.floor(s.height / 2), width: Math.floor(s.width / 2) };
        stage = { kind: 'maxpool', index, input: t, output: out(shape, t.layout) };
      } else if (layer.op === 'gap') {
        stage = {
          kind: 'gap',
          index,
          input: t,
          output: out({ kind: 'flat', units: image(t.shape).channels }, 'chw'),
        };
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
      this.stages.push(stage);
      t = stage.output;
    }
    for (const s of this.stages) {
      if (isWeight(s) && s.w.residual) {
        const a = s.input.alias ?? s.input;
        if (s.kind === 'conv' && a.layout !== 'hwc' && image(a.shape).channels > 1)
          throw new Error('a residual first conv needs a one-channel input (its input is channel-major)');
      }
    }
  }

  private convOut(s: { height: number; width: number }, l: { kernel: number; stride: number }) {
    const o = (n: number) => Math.floor((n + 2 * Math.floor(l.kernel / 2) - l.kernel) / l.stride) + 1;
    return { height: o(s.height), width: o(s.width) };
  }

  /** Rows of a weight stage's matmuls: B·Ho·Wo for a conv, B for a dense layer. */
  private rowsOf(s: WeightStage, batch: number): number {
    const out = s.output.shape;
    return s.kind === 'conv' && out.kind === 'image' ? batch * out.height * out.width : batch;
  }

  /** The tensor behind aliases (an un-transposed flatten is the tensor it flattens). */
  private source(t: Tensor): Tensor {
    return t.alias ? this.source(t.alias) : t;
  }

  /** The weight stage that reads `t` (looking through flatten), or null. */
  private consumer(t: Tensor): WeightStage | null {
    const next = this.stages.find((s) => s.input === t);
    if (!next) return null;
    if (next.kind === 'flatten') return this.consumer(next.output);
    return isWeight(next) ? next : null;
  }

  /** The max-abs slot a tensor's producer folds into: its consuming weight layer's x slot. */
  private outSlot(t: Tensor, val: boolean): number {
    const c = this.consumer(t);
    if (!c) return NONE;
    return val ? this.valSlot.x(c.w.index) : this.slot.x(c.w.index);
  }

  private inSlot(s: WeightStage, val: boolean): number {
    if (this.source(s.input).producer === null) return NONE;
    return val ? this.valSlot.x(s.w.index) : this.slot.x(s.w.index);
  }

  /** The int8 operand buffer of a dense stage's input (the gathered pixels for a flattened input). */
  private denseOperand(s: Stage): string {
    return this.source(s.input).producer === null ? 'x8_in' : `x8_${s.index}`;
  }

  override program(): Program {
    const { B, L, dataset, stepsPerUpload } = this;
    const V = this.plan.validation.length;
    const F = size(this.input.shape);
    this.declare('pixels', 'u8', [dataset.count * dataset.features], { from: 'pixels' });
    this.declare('labels', 'u8', [dataset.count], { from: 'labels' });
    this.declare('order', 'u32', [stepsPerUpload * B]);
    this.declare('valOrder', 'u32', [V], { from: 'validation' });
    this.declare('state', 'u32', [4]);
    this.declare('y', 'u32', [B]);
    this.declare('stats', 'i32', [stepsPerUpload * B, 2]);
    this.declare('valStats', 'i32', [V, 2]);
    this.declare('unused', 'i32', [4]);
    this.declare('maxes', 'u32', [6 * L + 1]);
    this.declare('input', 'i32', [B * F]);
    this.declare('x8_in', 'i8', [B, F]);
    const params: StateRange[] = [];
    const momentum: StateRange[] = [];
    let scratch = 1;
    let largest = F;
    for (const s of this.stages) {
      const n = B * size(s.output.shape);
      largest = Math.max(largest, n);
      if (!s.output.alias) {
        this.declare(s.output.buf, 'i32', [n]);
        this.declare(`g${s.index}`, 'i32', [n]);
      }
      if (s.kind === 'maxpool') this.declare(`arg${s.index}`, 'u32', [n]);
      if (!isWeight(s)) continue;
      const { index: l, K, N, wOffset, bOffset } = s.w;
      const rows = this.rowsOf(s, B);
      scratch = Math.max(scratch, rows * N, K * N, rows * K);
      const state = (kind: 'params' | 'momentum', name: string, offset: number, length: number) => ({
        buffer: this.declare(name, 'i32', [length], { from: kind, offset }),
        offset,
        length,
      });
      params.push(state('params', `W${l}`, wOffset, K * N), state('params', `b${l}`, bOffset, N));
      momentum.push(state('momentum', `VW${l}`, wOffset, K * N), state('momentum', `Vb${l}`, bOffset, N));
      this.declare(`w8_${l}`, 'i8', [K, N]);
      if (s.kind === 'conv') this.declare(`p8_${s.index}`, 'i8', [rows, K]);
      else if (this.denseOperand(s) !== 'x8_in') this.declare(`x8_${s.index}`, 'i8', [B, K]);
      this.declare(`e8_${l}`, 'i8', [rows, N]);
      this.declare(`z${s.index}`, 'i32', [rows * N]);
      this.declare(`gz${s.index}`, 'i32', [rows * N]);
    }
    this.declare('acc', 'i32', [scratch]);
    // a transposed input gradient and residual gradient, a discarded gz
    for (const name of ['acc2', 'acc3', 'gscratch']) this.declare(name, 'i32', [largest]);

    const weights = this.layers;
    const prologue = weights.map(({ index: l, K, N }) =>
      this.maxabs(`maxabs W${l}`, `W${l}`, K * N, this.slot.w(l)),
    );
    const step = [
      ...weights.map(({ index: l, K, N }) =>
        this.quantize(`quantize W${l}`, `W${l}`, [K, N], this.slot.w(l), TENSOR.srW(l), `w8_${l}`),
      ),
      ...this.forwardV2(B, false, true, 0),
      ...this.backwardV2(),
      this.stepBoundary('next step', L, 0, 0, true),
    ];
    const valWeights = weights.flatMap(({ index: l, K, N }) => [
      this.maxabs(`maxabs W${l} (val)`, `W${l}`, K * N, this.valSlot.w(l)),
      this.quantize(`quantize W${l} (val)`, `W${l}`, [K, N], this.valSlot.w(l), null, `w8_${l}`),
    ]);
    return this.assembleProgram(
      this.forwardV2.bind(this),
      { prologue, step, valWeights, params, momentum, stepsPerUpload },
      V,
      B,
      L,
    );
  }

  private imageParams(t: Tensor, batch: number) {
    const s = image(t.shape);
    return { batch, channels: s.channels, height: s.height, width: s.width, layout: t.layout };
  }

  forwardV2(rows: number, val: boolean, perStep: boolean, base: number): Invocation[] {
    const { B } = this;
    const V = this.plan.validation.length;
    const F = size(this.input.shape);
    const ops: Invocation[] = [
      {
        op: OPS.gather,
        label: 'gather',
        params: {
          rows,
          features: F,
          base,
          perStep,
          widen: true,
          count: this.dataset.count,
          steps: val ? Math.floor(V / B) : this.stepsPerUpload,
        },
        bind: {
          pixels: 'pixels',
          labels: 'labels',
          order: val ? 'valOrder' : 'order',
          state: 'state',
          x8: 'x8_in',
          y: 'y',
          xWide: 'input',
        },
      },
    ];
    for (const s of this.stages) {
      const outSlot = this.outSlot(s.output, val);
      if (s.kind === 'maxpool' || s.kind === 'gap') {
        const bind: Record<string, string> = { x: s.input.buf, maxes: 'maxes', y: s.output.buf };
        if (s.kind === 'maxpool') bind.arg = `arg${s.index}`;
        ops.push({
          op: OPS[s.kind],
          label: `${s.kind} ${s.index}`,
          params: { ...this.imageParams(s.input, rows), outSlot },
          bind,
        });
        continue;
      }
      if (s.kind === 'flatten') {
        if (!s.transposed) continue;
        const i = image(s.input.shape);
        ops.push(
          this.transpose(
            `flatten ${s.index}`,
            rows,
            i.height * i.width,
            i.channels,
            s.input.buf,
            s.output.buf,
          ),
        );
        continue;
      }
      if (!isWeight(s)) continue;
      const { index: l, K, N, activation, residual } = s.w;
      const xSlot = this.inSlot(s, val);
      const wSlot = val ? this.valSlot.w(l) : this.slot.w(l);
      const m = s.kind === 'conv' ? this.rowsOf(s, rows) : rows;
      if (s.kind === 'conv') {
        const g = this.v2.model.layers[s.index] as { kernel: number; stride: number };
        ops.push({
          op: OPS.im2col,
          label: `im2col ${s.index}`,
          params: { ...this.imageParams(s.input, rows), kernel: g.kernel, stride: g.stride, xSlot },
          bind: { x: s.input.buf, maxes: 'maxes', patches: `p8_${s.index}` },
        });
        ops.push(this.matmul(`x·W ${l}`, m, N, K, [`p8_${s.index}`, 'rows'], [`w8_${l}`, 'cols']));
      } else {
        const x8 = this.denseOperand(s);
        if (x8 !== 'x8_in')
          ops.push(this.quantize(`quantize x${l}`, s.input.buf, [rows, K], xSlot, null, x8));
        ops.push(this.matmul(`x·W ${l}`, rows, N, K, [x8, 'rows'], [`w8_${l}`, 'cols']));
      }
      ops.push({
        op: OPS.forward,
        label: `forward ${l}`,
        params: { rows: m, n: N, xSlot, wSlot, outSlot, act: activation, residual },
        bind: {
          acc: 'acc',
          bias: `b${l}`,
          hIn: residual ? s.input.buf : 'unused',
          maxes: 'maxes',
          z: `z${s.index}`,
          h: s.output.buf,
        },
      });
    }
    const last = this.stages[this.stages.length - 1];
    ops.push(this.softmax(rows, val, perStep, base, last.output.buf, `gz${last.index}`));
    return ops;
  }

  transpose(label: string, batch: number, rows: number, cols: number, x: string, y: string): Invocation {
    return { op: OPS.transpose, label, params: { batch, rows, cols, tiled: true }, bind: { x, y } };
  }

  /**
   * A conv layer's input gradient in one dispatch: col2im of e·Wᵀ fused with the dense backward
   * epilogue (rescale, residual, act′ of the layer below, max |gz|); the same bits as col2im then
   * backward, one dispatch and one [B][H][W][C] buffer fewer.
   */
  private col2imBackward(s: WeightStage, below: Stage): Invocation {
    const g = this.v2.model.layers[s.index] as { kernel: number; stride: number };
    const { index: l, residual } = s.w;
    const t = this.actTarget(this.source(s.input));
    return {
      op: OPS['col2im-backward'],
      label: `col2im-backward ${s.index}`,
      params: {
        ...this.imageParams(s.input, this.B),
        kernel: g.kernel,
        stride: g.stride,
        eSlot: this.slot.e(l),
        wSlot: this.slot.w(l),
        gzSlot: t.gzSlot,
        act: t.act,
        residual,
      },
      bind: {
        dP: 'acc',
        z: t.z,
        ghRes: residual ? `g${s.index}` : 'unused',
        maxes: 'maxes',
        ghOut: `g${below.index}`,
        gz: t.gz,
      },
    };
  }

  /** Where the backward of the stage reading `t` fuses act′: the weight stage that produced it, if any. */
  private actTarget(t: Tensor) {
    const p = t.producer;
    if (isWeight(p)) {
      return { act: p.w.activation, z: `z${p.index}`, gz: `gz${p.index}`, gzSlot: this.slot.e(p.w.index) };
    }
    return { act: null, z: t.buf, gz: 'gscratch', gzSlot: this.junk };
  }

  backwardV2(): Invocation[] {
    const { B } = this;
    const { learningRateQ16, momentumQ16, weightDecayQ24 } = this.spec.training;
    const ops: Invocation[] = [];
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const s = this.stages[i];
      if (s.kind === 'flatten') continue; // the dense layer after it transposes its gradient
      const src = this.source(s.input);
      if (s.kind === 'maxpool' || s.kind === 'gap') {
        if (src.producer === null) continue; // the pixels need no gradient
        const t = this.actTarget(src);
        const op = s.kind === 'maxpool' ? OPS['maxpool-backward'] : OPS['gap-backward'];
        const bind: Record<string, string> = {
          dy: `g${s.index}`,
          z: t.z,
          maxes: 'maxes',
          gh: `g${src.producer.index}`,
          gz: t.gz,
        };
        if (s.kind === 'maxpool') bind.arg = `arg${s.index}`;
        ops.push({
          op,
          label: `${s.kind} backward ${s.index}`,
          params: { ...this.imageParams(s.input, B), act: t.act, gzSlot: t.gzSlot },
          bind,
        });
        continue;
      }
      if (!isWeight(s)) continue;
      const { index: l, K, N, residual } = s.w;
      const rows = this.rowsOf(s, B);
      const operand = s.kind === 'conv' ? `p8_${s.index}` : this.denseOperand(s);
      ops.push(
        this.quantize(
          `quantize gz${l}`,
          `gz${s.index}`,
          [rows, N],
          this.slot.e(l),
          TENSOR.srErr(l),
          `e8_${l}`,
        ),
      );
      ops.push(this.matmul(`xᵀ·e ${l}`, K, N, rows, [operand, 'cols'], [`e8_${l}`, 'cols']));
      ops.push({
        op: OPS.sgd,
        label: `sgd ${l}`,
        params: {
          k: K,
          n: N,
          rows,
          xSlot: this.inSlot(s, false),
          eSlot: this.slot.e(l),
          learningRateQ16,
          momentumQ16,
          weightDecayQ24,
          wNextSlot: this.slot.wNext(l),
        },
        bind: {
          acc: 'acc',
          gz: `gz${s.index}`,
          maxes: 'maxes',
          w: `W${l}`,
          vw: `VW${l}`,
          bias: `b${l}`,
          vb: `Vb${l}`,
        },
      });
      if (src.producer === null) continue;
      ops.push(this.matmul(`e·Wᵀ ${l}`, rows, K, N, [`e8_${l}`, 'rows'], [`w8_${l}`, 'rows']));
      if (s.kind === 'conv') {
        ops.push(this.col2imBackward(s, src.producer));
        continue;
      }
      let gradient = 'acc';
      let ghRes = residual ? `g${s.index}` : 'unused';
      const flatten = s.input.producer?.kind === 'flatten' ? s.input.producer : null;
      if (flatten?.transposed) {
        // The gradient is in the flattened (chw) order; the layer below works in hwc.
        const img = image(flatten.input.shape);
        const hw = img.height * img.width;
        ops.push(this.transpose(`unflatten ${l}`, B, img.channels, hw, gradient, 'acc2'));
        gradient = 'acc2';
        if (residual) {
          ops.push(this.transpose(`unflatten residual ${l}`, B, img.channels, hw, ghRes, 'acc3'));
          ghRes = 'acc3';
        }
      }
      // Through a transposed flatten the unflattened gradient is that of the flatten's input: route
      // it (and act′) to that tensor's producer, not to the flatten's own (never read) buffer.
      const below = flatten?.transposed ? this.source(flatten.input) : src;
      if (below.producer === null) throw new Error('a transposed flatten never reads the pixels');
      const t = this.actTarget(below);
      ops.push({
        op: OPS.backward,
        label: `backward ${l}`,
        params: {
          count: B * size(below.shape),
          eSlot: this.slot.e(l),
          wSlot: this.slot.w(l),
          gzSlot: t.gzSlot,
          act: t.act,
          residual,
        },
        bind: { acc: gradient, z: t.z, ghRes, maxes: 'maxes', ghOut: `g${below.producer.index}`, gz: t.gz },
      });
    }
    return ops;
  }
}

/** Compiles a v2 spec. */
export function compileConv(
  spec: TaskSpecV2,
  dataset: Dataset,
  plan: TrainingPlan,
  stepsPerUpload: number,
): Program {
  if (!isV2(spec)) throw new Error('compileProgramV2 needs a v2 spec');
  return new CompilerV2(spec, dataset, plan, stepsPerUpload).program();
}
