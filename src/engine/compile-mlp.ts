/**
 * The plan rules of spec v1 (MLPs), and the helpers the v2 rules (./compile-conv.ts) build on.
 * Through ./compile.ts a spec becomes a Program — named buffers and the op sequences of a training
 * step (forward, backward and update in one list), of the first step's prologue and of validation.
 * Both backends run exactly these sequences (./program-cpu.ts, ./webgpu/program.ts), so the CPU
 * reference and the GPU agree by construction wherever each twin agrees with its kernel.
 *
 * Quantisation scales come from exact max-abs values held in the `maxes` buffer, grouped four per
 * weight layer from slot 0: [x, e, w, wNext] (operand x, error e, weights w for this step, wNext
 * for the next one), then the validation slots x (4L + l) and w (5L + l). Producers fold max |·| into
 * a slot (maxabs, or the fused epilogues forward, backward, softmax-xent, sgd); consumers (quantize,
 * the epilogues) read the shift from it; the `step` op resets the slots between steps.
 */
import type { AnyTaskSpec, TaskSpec } from '../protocol/spec.ts';
import { NONE, OPS } from './ops/index.ts';
import { TENSOR } from './ops/rng.ts';
import type { LayerPlan, TrainingPlan } from './plan.ts';
import {
  type BufferDecl,
  type CompileOptions,
  checkInvocations,
  type Invocation,
  type Program,
  type StateRange,
} from './program.ts';
import type { Dataset } from './types.ts';

/** Compiles a v1 (MLP) spec. */
export function compileMlp(
  spec: TaskSpec,
  dataset: Dataset,
  plan: TrainingPlan,
  options: CompileOptions = {},
): Program {
  const c = new Compiler(spec, dataset, plan, Math.max(1, options.stepsPerUpload ?? 1));
  return c.program();
}

export class Compiler {
  readonly buffers = new Map<string, BufferDecl>();
  readonly B: number;
  readonly layers: LayerPlan[];
  readonly L: number;
  readonly slot = {
    x: (l: number) => 4 * l,
    e: (l: number) => 4 * l + 1,
    w: (l: number) => 4 * l + 2,
    wNext: (l: number) => 4 * l + 3,
  };
  readonly valSlot: { x: (l: number) => number; w: (l: number) => number };

  constructor(
    readonly spec: AnyTaskSpec,
    readonly dataset: Dataset,
    readonly plan: TrainingPlan,
    readonly stepsPerUpload: number,
  ) {
    this.B = spec.training.batch;
    this.layers = plan.model.layers;
    this.L = this.layers.length;
    const L = this.L;
    this.valSlot = { x: (l) => 4 * L + l, w: (l) => 5 * L + l };
  }

  declare(name: string, type: BufferDecl['type'], shape: number[], init?: BufferDecl['init']): string {
    if (this.buffers.has(name)) throw new Error(`buffer '${name}' declared twice`);
    this.buffers.set(name, { name, type, shape, init });
    return name;
  }

  program(): Program {
    const { B, L, layers, dataset, stepsPerUpload } = this;
    const V = this.plan.validation.length;
    this.declare('pixels', 'u8', [dataset.count * dataset.features], { from: 'pixels' });
    this.declare('labels', 'u8', [dataset.count], { from: 'labels' });
    this.declare('order', 'u32', [stepsPerUpload * B]);
    this.declare('valOrder', 'u32', [V], { from: 'validation' });
    this.declare('state', 'u32', [4]);
    this.declare('y', 'u32', [B]);
    this.declare('stats', 'i32', [stepsPerUpload * B, 2]);
    this.declare('valStats', 'i32', [V, 2]);
    this.declare('unused', 'i32', [4]);
    this.declare('maxes', 'u32', [6 * L]);
    if (layers[0].residual) this.declare('input', 'i32', [B * layers[0].K]);
    const scratch = Math.max(...layers.map((l) => Math.max(B * l.N, l.K * l.N, B * l.K)));
    this.declare('acc', 'i32', [scratch]);
    const params: StateRange[] = [];
    const momentum: StateRange[] = [];
    for (const { index: l, K, N, wOffset, bOffset } of layers) {
      params.push({
        buffer: this.declare(`W${l}`, 'i32', [K * N], { from: 'params', offset: wOffset }),
        offset: wOffset,
        length: K * N,
      });
      params.push({
        buffer: this.declare(`b${l}`, 'i32', [N], { from: 'params', offset: bOffset }),
        offset: bOffset,
        length: N,
      });
      momentum.push({
        buffer: this.declare(`VW${l}`, 'i32', [K * N], { from: 'momentum', offset: wOffset }),
        offset: wOffset,
        length: K * N,
      });
      momentum.push({
        buffer: this.declare(`Vb${l}`, 'i32', [N], { from: 'momentum', offset: bOffset }),
        offset: bOffset,
        length: N,
      });
      this.declare(`w8_${l}`, 'i8', [K, N]);
      this.declare(`x8_${l}`, 'i8', [B, K]);
      this.declare(`e8_${l}`, 'i8', [B, N]);
      this.declare(`z${l}`, 'i32', [B * N]);
      this.declare(`h${l}`, 'i32', [B * N]);
      this.declare(`gz${l}`, 'i32', [B * N]);
      if (l > 0) this.declare(`gin${l}`, 'i32', [B * K]);
    }

    const prologue = layers.map(({ index: l, K, N }) =>
      this.maxabs(`maxabs W${l}`, `W${l}`, K * N, this.slot.w(l)),
    );
    const step = [
      ...layers.map(({ index: l, K, N }) =>
        this.quantize(`quantize W${l}`, `W${l}`, [K, N], this.slot.w(l), TENSOR.srW(l), `w8_${l}`),
      ),
      ...this.forward(B, false, true, 0),
      ...this.backwardAndUpdate(),
      this.stepBoundary('next step', L, 0, 0, true),
    ];
    const valWeights = layers.flatMap(({ index: l, K, N }) => [
      this.maxabs(`maxabs W${l} (val)`, `W${l}`, K * N, this.valSlot.w(l)),
      this.quantize(`quantize W${l} (val)`, `W${l}`, [K, N], this.valSlot.w(l), null, `w8_${l}`),
    ]);
    return this.assembleProgram(
      this.forward.bind(this),
      { prologue, step, valWeights, params, momentum, stepsPerUpload },
      V,
      B,
      L,
    );
  }

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

  /** The forward pass over `rows` examples; `val` picks the validation slots and stats. */
  /** Validation in chunks of B rows plus a tail of V mod B, around `forward`; checked and assembled. */
  protected assembleProgram(
    forward: (rows: number, val: boolean, perStep: boolean, base: number) => Invocation[],
    parts: Pick<Program, 'prologue' | 'step' | 'valWeights' | 'params' | 'momentum' | 'stepsPerUpload'>,
    V: number,
    B: number,
    L: number,
  ): Program {
    const tail = V % B;
    const valChunk = [...forward(B, true, true, 0), this.stepBoundary('next chunk', 0, 4 * L, L, true)];
    const valTail =
      tail > 0
        ? [this.stepBoundary('clear', 0, 4 * L, L, false), ...forward(tail, true, false, V - tail)]
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

  forward(rows: number, val: boolean, perStep: boolean, base: number): Invocation[] {
    const { layers, L, B, dataset } = this;
    const xs = (l: number) => (l === 0 ? NONE : val ? this.valSlot.x(l) : this.slot.x(l));
    const ws = (l: number) => (val ? this.valSlot.w(l) : this.slot.w(l));
    const K0 = layers[0].K;
    const widen = layers[0].residual;
    const V = this.plan.validation.length;
    const ops: Invocation[] = [
      {
        op: OPS.gather,
        label: 'gather',
        params: {
          rows,
          features: K0,
          base,
          perStep,
          widen,
          count: dataset.count,
          steps: val ? Math.floor(V / B) : this.stepsPerUpload,
        },
        bind: {
          pixels: 'pixels',
          labels: 'labels',
          order: val ? 'valOrder' : 'order',
          state: 'state',
          x8: 'x8_0',
          y: 'y',
          xWide: widen ? 'input' : 'unused',
        },
      },
    ];
    for (const { index: l, K, N, activation, residual } of layers) {
      if (l > 0)
        ops.push(this.quantize(`quantize h${l - 1}`, `h${l - 1}`, [rows, K], xs(l), null, `x8_${l}`));
      ops.push(this.matmul(`x·W ${l}`, rows, N, K, [`x8_${l}`, 'rows'], [`w8_${l}`, 'cols']));
      const last = l === L - 1;
      ops.push({
        op: OPS.forward,
        label: `forward ${l}`,
        params: {
          rows,
          n: N,
          xSlot: xs(l),
          wSlot: ws(l),
          outSlot: last ? NONE : xs(l + 1),
          act: activation,
          residual,
        },
        bind: {
          acc: 'acc',
          bias: `b${l}`,
          hIn: residual ? (l === 0 ? 'input' : `h${l - 1}`) : 'unused',
          maxes: 'maxes',
          z: `z${l}`,
          h: `h${l}`,
        },
      });
    }
    ops.push(this.softmax(rows, val, perStep, base, `h${L - 1}`, `gz${L - 1}`));
    return ops;
  }

  /** Loss, correctness and (training) the logits' gradient of `rows` examples. */
  softmax(
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
        classes: this.layers[this.L - 1].N,
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

  /** Backward from the last layer down, each layer's update right after its weight gradient. */
  backwardAndUpdate(): Invocation[] {
    const { layers, B } = this;
    const { learningRateQ16, momentumQ16, weightDecayQ24 } = this.spec.training;
    const ops: Invocation[] = [];
    for (let l = this.L - 1; l >= 0; l--) {
      const { K, N, residual } = layers[l];
      ops.push(
        this.quantize(`quantize gz${l}`, `gz${l}`, [B, N], this.slot.e(l), TENSOR.srErr(l), `e8_${l}`),
      );
      ops.push(this.matmul(`xᵀ·e ${l}`, K, N, B, [`x8_${l}`, 'cols'], [`e8_${l}`, 'cols']));
      ops.push({
        op: OPS.sgd,
        label: `sgd ${l}`,
        params: {
          k: K,
          n: N,
          rows: B,
          xSlot: l === 0 ? NONE : this.slot.x(l),
          eSlot: this.slot.e(l),
          learningRateQ16,
          momentumQ16,
          weightDecayQ24,
          wNextSlot: this.slot.wNext(l),
        },
        bind: {
          acc: 'acc',
          gz: `gz${l}`,
          maxes: 'maxes',
          w: `W${l}`,
          vw: `VW${l}`,
          bias: `b${l}`,
          vb: `Vb${l}`,
        },
      });
      if (l === 0) continue;
      ops.push(this.matmul(`e·Wᵀ ${l}`, B, K, N, [`e8_${l}`, 'rows'], [`w8_${l}`, 'rows']));
      const prev = layers[l - 1];
      ops.push({
        op: OPS.backward,
        label: `backward ${l}`,
        params: {
          count: B * K,
          eSlot: this.slot.e(l),
          wSlot: this.slot.w(l),
          gzSlot: this.slot.e(l - 1),
          act: prev.activation!,
          residual,
        },
        bind: {
          acc: 'acc',
          z: `z${l - 1}`,
          ghRes: residual ? `gin${l + 1}` : 'unused',
          maxes: 'maxes',
          ghOut: `gin${l}`,
          gz: `gz${l - 1}`,
        },
      });
    }
    return ops;
  }
}
