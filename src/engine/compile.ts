/**
 * The plan compiler: one for every spec. A spec (v1 MLP or v2 conv) is a sequential model
 * (plan.ts `sequentialModel`; a v1 MLP is dense layers on a flat input), its layers stages over
 * tensors (./compile-stages.ts), and each stage a few op invocations over named buffers: a Program
 * (./program.ts) with the op sequences of a training step (forward, backward and update in one
 * list), of the first step's prologue and of validation. Both backends run exactly these sequences
 * (./program-cpu.ts with the twins, ./webgpu/program.ts with the kernels), so the CPU reference and
 * the GPU agree by construction wherever each twin agrees with its kernel.
 *
 * The rules per stage (docs/ARITHMETIC.md):
 *   dense    quantize x (RNE; the gathered pixels need none) · quantised W → forward epilogue
 *            backward: quantize gz, xᵀ·e, sgd | e·Wᵀ, backward epilogue (act′ of the layer below)
 *   conv     conv-forward: the implicit GEMM of the patches of x (gathered and RNE-quantised on the
 *            fly, never in memory) with the quantised W, forward epilogue fused   (hwc out)
 *            backward: quantize gz, conv-weight-grad (Pᵀ·e and Σ gz added into gw), sgd (accumulated)
 *            | conv-input-grad (the transposed conv of e8 and w8, backward epilogue fused)
 *   maxpool  maxpool (value + argmax)          backward: maxpool-backward (act′ of its input's layer fused)
 *   gap      gap                               backward: gap-backward (likewise)
 *   flatten  transpose hwc → chw (none when the input is chw or has one channel); in the backward the
 *            dense layer after it transposes its input gradient back before its epilogue
 *   classifier  a dense layer without activation, then softmax-xent
 *
 * Quantisation scales come from exact max-abs values held in the `maxes` buffer, grouped four per
 * weight layer from slot 0: [x, e, w, wNext] (operand x, error e, weights w for this step, wNext
 * for the next one), then the validation slots x (4L + l) and w (5L + l), then one junk slot that
 * max-abs folds nobody reads go to (the gz of a pool's input when no weight layer needs it).
 * Producers fold max |·| into a slot (maxabs, or the fused epilogues forward, backward,
 * softmax-xent, sgd); consumers (quantize, the epilogues) read the shift from it; the `step` op
 * resets the slots between steps.
 */
import type { AnyTaskSpec } from '../protocol/spec.ts';
import {
  buildStages,
  image,
  isPool,
  isWeight,
  type PoolStage,
  type Stage,
  StageGraph,
  size,
  type Tensor,
  type WeightStage,
} from './compile-stages.ts';
import { chooseTiling } from './ops/conv-tiling.ts';
import { NONE, OPS } from './ops/index.ts';
import { TENSOR } from './ops/rng.ts';
import { type LayerPlan, sequentialModel, type TrainingPlan } from './plan.ts';
import {
  type BufferDecl,
  type CompileOptions,
  checkInvocations,
  type Invocation,
  type Program,
  type StateRange,
} from './program.ts';
import type { Dataset } from './types.ts';

export type { CompileOptions, Program, StateRange } from './program.ts';

export function compileProgram(
  spec: AnyTaskSpec,
  dataset: Dataset,
  plan: TrainingPlan,
  options: CompileOptions = {},
): Program {
  const stepsPerUpload = Math.max(1, options.stepsPerUpload ?? 1);
  return new Compiler(spec, dataset, plan, stepsPerUpload, options.tiled ?? false).program();
}

class Compiler {
  readonly buffers = new Map<string, BufferDecl>();
  readonly B: number;
  readonly weights: LayerPlan[];
  readonly L: number;
  readonly slot = {
    x: (l: number) => 4 * l,
    e: (l: number) => 4 * l + 1,
    w: (l: number) => 4 * l + 2,
    wNext: (l: number) => 4 * l + 3,
  };
  readonly valSlot: { x: (l: number) => number; w: (l: number) => number };
  /** The slot nobody reads. */
  readonly junk: number;
  readonly input: Tensor;
  readonly stages: Stage[];
  readonly graph: StageGraph;
  /** The gather also writes the pixels as Q16 i32 (`input`): some op reads them so. */
  readonly widen: boolean;

  constructor(
    readonly spec: AnyTaskSpec,
    readonly dataset: Dataset,
    readonly plan: TrainingPlan,
    readonly stepsPerUpload: number,
    readonly tiled: boolean,
  ) {
    this.B = spec.training.batch;
    this.weights = plan.model.layers;
    const L = this.weights.length;
    this.L = L;
    this.valSlot = { x: (l) => 4 * L + l, w: (l) => 5 * L + l };
    this.junk = 6 * L;
    const model = sequentialModel(spec);
    this.input = { buf: 'input', shape: model.input, layout: 'chw', producer: null };
    this.stages = buildStages(this.input, model.layers, plan.model);
    this.graph = new StageGraph(this.stages);
    // Convs and pools read their input as i32 activations, a residual layer adds it to its output;
    // a dense layer reads only the int8 operand the gather writes anyway.
    const readsWide = (s: Stage) =>
      s.kind === 'conv' || s.kind === 'maxpool' || s.kind === 'gap' || (s.kind === 'dense' && s.w.residual);
    this.widen = this.stages.some((s) => this.graph.readsPixels(s) && readsWide(s));
  }

  declare(name: string, type: BufferDecl['type'], shape: number[], init?: BufferDecl['init']): string {
    if (this.buffers.has(name)) throw new Error(`buffer '${name}' declared twice`);
    this.buffers.set(name, { name, type, shape, init });
    return name;
  }

  /** Rows of a weight stage's matmuls: B·Ho·Wo for a conv, B for a dense layer. */
  private rowsOf(s: WeightStage, batch: number): number {
    const out = s.output.shape;
    return s.kind === 'conv' && out.kind === 'image' ? batch * out.height * out.width : batch;
  }

  /** The max-abs slot a tensor's producer folds into: its consuming weight layer's x slot. */
  private outSlot(t: Tensor, val: boolean): number {
    const c = this.graph.consumer(t);
    if (!c) return NONE;
    return val ? this.valSlot.x(c.w.index) : this.slot.x(c.w.index);
  }

  private inSlot(s: WeightStage, val: boolean): number {
    if (this.graph.readsPixels(s)) return NONE;
    return val ? this.valSlot.x(s.w.index) : this.slot.x(s.w.index);
  }

  /** The int8 operand buffer of a dense stage's input (the gathered pixels for a flat input). */
  private denseOperand(s: Stage): string {
    return this.graph.readsPixels(s) ? 'x8_in' : `x8_${s.index}`;
  }

  program(): Program {
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
    if (this.widen) this.declare('input', 'i32', [B * F]);
    this.declare('x8_in', 'i8', [B, F]);
    const { params, momentum, scratch, largest } = this.declareStages();
    this.declare('acc', 'i32', [scratch]);
    // a transposed input gradient and residual gradient, a discarded gz
    for (const name of ['acc2', 'acc3', 'gscratch']) this.declare(name, 'i32', [largest]);

    const prologue = this.weights.map(({ index: l, K, N }) =>
      this.maxabs(`maxabs W${l}`, `W${l}`, K * N, this.slot.w(l)),
    );
    const step = [
      ...this.weights.map(({ index: l, K, N }) =>
        this.quantize(`quantize W${l}`, `W${l}`, [K, N], this.slot.w(l), TENSOR.srW(l), `w8_${l}`),
      ),
      ...this.forward(B, false, true, 0),
      ...this.backward(),
      this.stepBoundary('next step', L, 0, 0, true),
    ];
    const valWeights = this.weights.flatMap(({ index: l, K, N }) => [
      this.maxabs(`maxabs W${l} (val)`, `W${l}`, K * N, this.valSlot.w(l)),
      this.quantize(`quantize W${l} (val)`, `W${l}`, [K, N], this.valSlot.w(l), null, `w8_${l}`),
    ]);
    return this.assemble({ prologue, step, valWeights, params, momentum, stepsPerUpload });
  }

  /** Each stage's tensors, and the parameters and operands of its weight layer. */
  private declareStages() {
    const { B } = this;
    const params: StateRange[] = [];
    const momentum: StateRange[] = [];
    let scratch = 1;
    let largest = size(this.input.shape);
    const state = (kind: 'params' | 'momentum', name: string, offset: number, length: number) => ({
      buffer: this.declare(name, 'i32', [length], { from: kind, offset }),
      offset,
      length,
    });
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
      if (s.kind === 'dense') scratch = Math.max(scratch, B * N, K * N, B * K);
      params.push(state('params', `W${l}`, wOffset, K * N), state('params', `b${l}`, bOffset, N));
      momentum.push(state('momentum', `VW${l}`, wOffset, K * N), state('momentum', `Vb${l}`, bOffset, N));
      this.declare(`w8_${l}`, 'i8', [K, N]);
      // A conv's weight and bias gradients are summed into gw (sgd reads and zeroes it).
      if (s.kind === 'conv') this.declare(`gw${l}`, 'i32', [K * N + N]);
      else if (this.denseOperand(s) !== 'x8_in') this.declare(`x8_${s.index}`, 'i8', [B, K]);
      const rows = this.rowsOf(s, B);
      this.declare(`e8_${l}`, 'i8', [rows, N]);
      this.declare(`z${s.index}`, 'i32', [rows * N]);
      this.declare(`gz${s.index}`, 'i32', [rows * N]);
    }
    return { params, momentum, scratch, largest };
  }

  /** Validation in chunks of B rows plus a tail of V mod B around `forward`; checked and assembled. */
  private assemble(
    parts: Pick<Program, 'prologue' | 'step' | 'valWeights' | 'params' | 'momentum' | 'stepsPerUpload'>,
  ): Program {
    const { B, L } = this;
    const V = this.plan.validation.length;
    const tail = V % B;
    const valChunk = [...this.forward(B, true, true, 0), this.stepBoundary('next chunk', 0, 4 * L, L, true)];
    const valTail =
      tail > 0
        ? [this.stepBoundary('clear', 0, 4 * L, L, false), ...this.forward(tail, true, false, V - tail)]
        : [];
    checkInvocations(this.buffers, [parts.prologue, parts.step, parts.valWeights, valChunk, valTail]);
    return {
      ...parts,
      buffers: this.buffers,
      valChunk,
      valTail,
      valChunks: Math.floor(V / B),
      valSlots: { from: 4 * L, count: 2 * L },
    };
  }

  // ---- invocation helpers

  maxabs(label: string, x: string, n: number, slot: number): Invocation {
    return { op: OPS.maxabs, label, params: { n, slot }, bind: { x, maxes: 'maxes' } };
  }

  /** x[rows][cols] → int8 `out`; tensor = null rounds half-even. */
  quantize(
    label: string,
    x: string,
    [rows, cols]: number[],
    slot: number,
    tensor: number | null,
    out: string,
  ): Invocation {
    return {
      op: OPS.quantize,
      label,
      params: { rows, cols, slot, tensor, seed: this.spec.training.seed },
      bind: { x, maxes: 'maxes', state: 'state', out },
    };
  }

  matmul(
    label: string,
    m: number,
    n: number,
    k: number,
    a: [string, 'rows' | 'cols'],
    b: [string, 'rows' | 'cols'],
  ): Invocation {
    return {
      op: OPS.matmul,
      label,
      params: { m, n, k, a: a[1], b: b[1] },
      bind: { a: a[0], b: b[0], c: 'acc' },
    };
  }

  stepBoundary(
    label: string,
    layers: number,
    clearFrom: number,
    clearCount: number,
    advance: boolean,
  ): Invocation {
    const slots = this.buffers.get('maxes')!.shape[0];
    return {
      op: OPS.step,
      label,
      params: { layers, clearFrom, clearCount, advance, slots },
      bind: { maxes: 'maxes', state: 'state' },
    };
  }

  transpose(label: string, batch: number, rows: number, cols: number, x: string, y: string): Invocation {
    const params = { batch, rows, cols, tiled: this.tiled };
    return { op: OPS.transpose, label, params, bind: { x, y } };
  }

  private imageParams(t: Tensor, batch: number) {
    const s = image(t.shape);
    return { batch, channels: s.channels, height: s.height, width: s.width, layout: t.layout };
  }

  /**
   * A conv's geometry over `batch` examples and its kernels' tiling for a GEMM of `rows` × `cols`
   * outputs (the weight gradient's: K × N, its spare threads splitting the sum).
   */
  private convParams(s: WeightStage, batch: number, rows: number, cols: number, split = false) {
    return {
      ...this.imageParams(s.input, batch),
      kernel: s.kernel,
      stride: s.stride,
      n: s.w.N,
      ...chooseTiling(rows, cols, this.tiled, split),
    };
  }

  // ---- forward

  /** The forward pass over `rows` examples; `val` picks the validation slots and stats. */
  forward(rows: number, val: boolean, perStep: boolean, base: number): Invocation[] {
    const ops = [this.gather(rows, val, perStep, base)];
    for (const s of this.stages) {
      if (isPool(s)) ops.push(this.poolForward(s, rows, val));
      else if (s.kind === 'flatten') {
        if (!s.transposed) continue;
        const i = image(s.input.shape);
        const { buf } = s.output;
        ops.push(
          this.transpose(`flatten ${s.index}`, rows, i.height * i.width, i.channels, s.input.buf, buf),
        );
      } else ops.push(...this.weightForward(s, rows, val));
    }
    const last = this.stages[this.stages.length - 1];
    ops.push(this.softmax(rows, val, perStep, base, last.output.buf, `gz${last.index}`));
    return ops;
  }

  private gather(rows: number, val: boolean, perStep: boolean, base: number): Invocation {
    const V = this.plan.validation.length;
    return {
      op: OPS.gather,
      label: 'gather',
      params: {
        rows,
        features: size(this.input.shape),
        base,
        perStep,
        widen: this.widen,
        count: this.dataset.count,
        steps: val ? Math.floor(V / this.B) : this.stepsPerUpload,
      },
      bind: {
        pixels: 'pixels',
        labels: 'labels',
        order: val ? 'valOrder' : 'order',
        state: 'state',
        x8: 'x8_in',
        y: 'y',
        xWide: this.widen ? 'input' : 'unused',
      },
    };
  }

  private poolForward(s: PoolStage, rows: number, val: boolean): Invocation {
    const bind: Record<string, string> = { x: s.input.buf, maxes: 'maxes', y: s.output.buf };
    if (s.kind === 'maxpool') bind.arg = `arg${s.index}`;
    return {
      op: OPS[s.kind],
      label: `${s.kind} ${s.index}`,
      params: { ...this.imageParams(s.input, rows), outSlot: this.outSlot(s.output, val) },
      bind,
    };
  }

  private weightForward(s: WeightStage, rows: number, val: boolean): Invocation[] {
    const { index: l, K, N, activation, residual } = s.w;
    const xSlot = this.inSlot(s, val);
    const wSlot = val ? this.valSlot.w(l) : this.slot.w(l);
    const outSlot = this.outSlot(s.output, val);
    const hIn = residual ? this.graph.source(s.input).buf : 'unused';
    const epilogue = { bias: `b${l}`, hIn, maxes: 'maxes', z: `z${s.index}`, h: s.output.buf };
    if (s.kind === 'conv') {
      const m = this.rowsOf(s, rows);
      const params = { ...this.convParams(s, rows, m, N), xSlot, wSlot, outSlot, act: activation, residual };
      return [
        {
          op: OPS['conv-forward'],
          label: `conv ${l}`,
          params,
          bind: { x: s.input.buf, w8: `w8_${l}`, ...epilogue },
        },
      ];
    }
    const ops: Invocation[] = [];
    const x8 = this.denseOperand(s);
    if (x8 !== 'x8_in') ops.push(this.quantize(`quantize x${l}`, s.input.buf, [rows, K], xSlot, null, x8));
    ops.push(this.matmul(`x·W ${l}`, rows, N, K, [x8, 'rows'], [`w8_${l}`, 'cols']));
    ops.push({
      op: OPS.forward,
      label: `forward ${l}`,
      params: { rows, n: N, xSlot, wSlot, outSlot, act: activation, residual },
      bind: { acc: 'acc', ...epilogue },
    });
    return ops;
  }

  /** Loss, correctness and (training) the logits' gradient of `rows` examples. */
  private softmax(
    rows: number,
    val: boolean,
    perStep: boolean,
    base: number,
    logits: string,
    gz: string,
  ): Invocation {
    const V = this.plan.validation.length;
    const B = this.B;
    return {
      op: OPS['softmax-xent'],
      label: 'softmax-xent',
      params: {
        rows,
        classes: this.weights[this.L - 1].N,
        gradDivisor: B,
        base,
        gzSlot: this.slot.e(this.L - 1),
        train: !val,
        perStep,
        statsRows: val ? V : this.stepsPerUpload * B,
      },
      bind: { logits, y: 'y', state: 'state', maxes: 'maxes', gz, stats: val ? 'valStats' : 'stats' },
    };
  }

  // ---- backward

  /** Backward from the last stage down, each weight layer's update right after its weight gradient. */
  backward(): Invocation[] {
    const ops: Invocation[] = [];
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const s = this.stages[i];
      if (s.kind === 'flatten') continue; // the dense layer after it transposes its gradient
      if (isPool(s)) {
        if (!this.graph.readsPixels(s)) ops.push(this.poolBackward(s));
        continue;
      }
      ops.push(...this.weightGradient(s));
      if (this.graph.readsPixels(s)) continue; // the pixels need no gradient
      ops.push(...(s.kind === 'conv' ? this.convInputGradient(s) : this.denseInputGradient(s)));
    }
    return ops;
  }

  /** Where the backward of the stage reading `t` fuses act′: the weight stage that produced it, if any. */
  private actTarget(t: Tensor) {
    const p = t.producer;
    if (isWeight(p)) {
      return { act: p.w.activation, z: `z${p.index}`, gz: `gz${p.index}`, gzSlot: this.slot.e(p.w.index) };
    }
    return { act: null, z: t.buf, gz: 'gscratch', gzSlot: this.junk };
  }

  private poolBackward(s: PoolStage): Invocation {
    const src = this.graph.source(s.input);
    const t = this.actTarget(src);
    const op = s.kind === 'maxpool' ? OPS['maxpool-backward'] : OPS['gap-backward'];
    const bind: Record<string, string> = {
      dy: `g${s.index}`,
      z: t.z,
      maxes: 'maxes',
      gh: `g${src.producer!.index}`,
      gz: t.gz,
    };
    if (s.kind === 'maxpool') bind.arg = `arg${s.index}`;
    return {
      op,
      label: `${s.kind} backward ${s.index}`,
      params: { ...this.imageParams(s.input, this.B), act: t.act, gzSlot: t.gzSlot },
      bind,
    };
  }

  /** quantize gz, the weight gradient and the layer's SGD update. */
  private weightGradient(s: WeightStage): Invocation[] {
    const { learningRateQ16, momentumQ16, weightDecayQ24 } = this.spec.training;
    const { index: l, K, N } = s.w;
    const rows = this.rowsOf(s, this.B);
    const e8 = `e8_${l}`;
    const conv = s.kind === 'conv';
    const gradient: Invocation = conv
      ? {
          op: OPS['conv-weight-grad'],
          label: `conv weight gradient ${l}`,
          params: {
            ...this.convParams(s, this.B, K, N, true),
            xSlot: this.inSlot(s, false),
            // parts of the sum: about 256 on a GPU (enough workgroups), 32 untiled (a CPU
            // emulator has few cores, and each part costs atomics)
            splitWords: Math.max(16, Math.ceil(Math.ceil(rows / 4) / (this.tiled ? 256 : 32))),
          },
          bind: { x: s.input.buf, maxes: 'maxes', e8, gz: `gz${s.index}`, acc: `gw${l}` },
        }
      : this.matmul(`xᵀ·e ${l}`, K, N, rows, [this.denseOperand(s), 'cols'], [e8, 'cols']);
    return [
      this.quantize(`quantize gz${l}`, `gz${s.index}`, [rows, N], this.slot.e(l), TENSOR.srErr(l), e8),
      gradient,
      {
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
          accumulated: conv,
        },
        bind: {
          acc: conv ? `gw${l}` : 'acc',
          gz: conv ? 'unused' : `gz${s.index}`,
          maxes: 'maxes',
          w: `W${l}`,
          vw: `VW${l}`,
          bias: `b${l}`,
          vb: `Vb${l}`,
        },
      },
    ];
  }

  /**
   * A conv layer's input gradient: one conv-input-grad (the transposed conv of e8 and w8, with the
   * rescale, residual, act′ of the layer below and max |gz| fused).
   */
  private convInputGradient(s: WeightStage): Invocation[] {
    const { index: l, residual } = s.w;
    const below = this.graph.source(s.input);
    const t = this.actTarget(below);
    const input = image(s.input.shape);
    const pixels = this.B * input.height * input.width;
    return [
      {
        op: OPS['conv-input-grad'],
        label: `conv input gradient ${l}`,
        params: {
          ...this.convParams(s, this.B, pixels, input.channels),
          eSlot: this.slot.e(l),
          wSlot: this.slot.w(l),
          gzSlot: t.gzSlot,
          act: t.act,
          residual,
        },
        bind: {
          e8: `e8_${l}`,
          w8: `w8_${l}`,
          z: t.z,
          ghRes: residual ? `g${s.index}` : 'unused',
          maxes: 'maxes',
          ghOut: `g${below.producer!.index}`,
          gz: t.gz,
        },
      },
    ];
  }

  /** A dense layer's input gradient: e·Wᵀ, then the backward epilogue (through a flatten: unflattened). */
  private denseInputGradient(s: WeightStage): Invocation[] {
    const { B } = this;
    const { index: l, K, N, residual } = s.w;
    const ops = [this.matmul(`e·Wᵀ ${l}`, B, K, N, [`e8_${l}`, 'rows'], [`w8_${l}`, 'rows'])];
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
    const below = flatten?.transposed ? this.graph.source(flatten.input) : this.graph.source(s.input);
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
    return ops;
  }
}
