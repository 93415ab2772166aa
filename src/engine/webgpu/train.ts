/**
 * The WebGPU backend of the integer-exact trainer: the same arithmetic as the CPU reference
 * (src/engine/train-cpu.ts), step for step, with the kernels of src/engine/ops/*.wgsl.
 *
 * A training step is a fixed list of dispatches ("ops") built once: bind groups and uniforms are
 * static, and everything that changes from step to step lives in GPU buffers (the step counter that
 * keys the RNG, the max-abs slots that decide quantisation shifts, the batch indices). So many steps
 * are recorded into one compute pass and one command buffer, and nothing is read back per step:
 * only the per-example losses (for progress, once per submit), the parameters at trace checkpoints
 * (for the state hash) and the validation totals at the end.
 */

import { GpuSession, GpuUnavailableError } from '../../gpu/device.ts';
import type { Checkpoint, TaskResult } from '../../protocol/result.ts';
import { buildTaskResult } from '../../protocol/result.ts';
import { type TaskSpec, taskIdOf } from '../../protocol/spec.ts';
import { checkpointSteps } from '../../protocol/trace.ts';
import { TENSOR } from '../ops/rng.ts';
import { initialParams, type LayerPlan, type TrainingPlan, trainingPlan } from '../plan.ts';
import { hashI32, stateHashOf } from '../train-cpu.ts';
import type { Dataset, TrainOptions, TrainProgress, TrainState } from '../types.ts';
import { bindGroup, readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { contextFromDevice, contextFromSession, type GpuContext } from './context.ts';
import { ACTIVATION_CODE, type KernelName, kernelCode } from './kernels.ts';
import { type MatmulShape, matmulGrid, matmulParams, matmulPipeline } from './matmul.ts';

const NONE = 0xffffffff;
/** Workgroups of a max-abs scan (each thread then covers a grid-stride slice). */
const MAXABS_GROUPS = 64;
const MAX_GROUPS = 65535;
/** Submits in flight at once: the next is queued while the previous one is read back. */
const IN_FLIGHT = 2;
const MAP_READ = 0x1;
const COPY_DST = 0x8;
/** Steps recorded per command buffer at most (between progress read-backs). */
const DEFAULT_STEPS_PER_SUBMIT = 32;

/** One recorded dispatch: pipeline, bind group and grid, all fixed at setup. */
interface Op {
  name: string;
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  grid: [number, number];
}

/** Per weight layer: master weights, momentum and the step's activations/errors. */
interface LayerState {
  plan: LayerPlan;
  W: GPUBuffer;
  b: GPUBuffer;
  VW: GPUBuffer;
  Vb: GPUBuffer;
  // Int8 operands, each in the two k-packed layouts of matmul.wgsl: by rows and by columns.
  w8r: GPUBuffer; // K lines of N (B operand of e·Wᵀ)
  w8c: GPUBuffer; // N lines of K (B operand of x·W)
  x8r: GPUBuffer; // B lines of K (A operand of x·W)
  x8c: GPUBuffer; // K lines of B (A operand of xᵀ·e)
  e8r: GPUBuffer; // B lines of N (A operand of e·Wᵀ)
  e8c: GPUBuffer; // N lines of B (B operand of xᵀ·e)
  z: GPUBuffer; // [B][N] Q16
  h: GPUBuffer; // [B][N] Q16 output (logits for the last layer)
  gz: GPUBuffer; // [B][N] Q24
  gin: GPUBuffer | null; // [B][K] Q24 error at the input (layers > 0)
}

/** Elementwise grid: `count` threads in workgroups of `perGroup`, 2-D past the per-dimension limit. */
function grid(count: number, perGroup = 256): [number, number] {
  const groups = Math.max(1, Math.ceil(count / perGroup));
  if (groups <= MAX_GROUPS) return [groups, 1];
  return [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS)];
}

function packBytes(bytes: Uint8Array): Uint32Array {
  const words = new Uint32Array(Math.max(1, Math.ceil(bytes.length / 4)));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

export interface GpuTrainerOptions {
  /** Steps per command buffer (default 32). */
  stepsPerSubmit?: number;
  /** Use dot4I8Packed where available (default) or force the plain i32 path. */
  packed?: boolean;
}

export class GpuTrainer {
  step: number;
  /** Dispatches recorded per training step. */
  readonly dispatchesPerStep: number;
  private readonly B: number;
  private readonly stepsPerSubmit: number;
  private constructor(
    readonly ctx: GpuContext,
    readonly spec: TaskSpec,
    readonly plan: TrainingPlan,
    private readonly layers: LayerState[],
    private readonly bufs: {
      order: GPUBuffer;
      state: GPUBuffer;
      maxes: GPUBuffer;
      stats: GPUBuffer;
      valStats: GPUBuffer;
      all: GPUBuffer[];
    },
    private readonly ops: { step: Op[]; valWeights: Op[]; valChunk: Op[]; valTail: Op[] },
    step: number,
    options: GpuTrainerOptions,
  ) {
    this.step = step;
    this.B = spec.training.batch;
    this.dispatchesPerStep = ops.step.length;
    this.stepsPerSubmit = Math.max(1, options.stepsPerSubmit ?? DEFAULT_STEPS_PER_SUBMIT);
  }

  static async create(
    ctx: GpuContext,
    spec: TaskSpec,
    dataset: Dataset,
    from?: TrainState,
    options: GpuTrainerOptions = {},
  ): Promise<GpuTrainer> {
    const plan = trainingPlan(spec, dataset);
    const { layers: layerPlans, paramCount } = plan.model;
    if (from) {
      if (from.params.length !== paramCount || from.momentum.length !== paramCount)
        throw new Error(`resume state has ${from.params.length} parameters, the model has ${paramCount}`);
      if (from.step < 0 || from.step > spec.training.steps)
        throw new Error(`resume step ${from.step} out of range`);
    }
    const params = from ? from.params : initialParams(spec, plan.model);
    const momentum = from ? from.momentum : new Int32Array(paramCount);
    const { device } = ctx;
    const B = spec.training.batch;
    const L = layerPlans.length;
    const steps = Math.min(options.stepsPerSubmit ?? DEFAULT_STEPS_PER_SUBMIT, spec.training.steps);
    const all: GPUBuffer[] = [];
    const buffer = (bytes: number, data?: ArrayBufferView, label?: string) => {
      const b = storageBuffer(device, bytes, data, label);
      all.push(b);
      return b;
    };
    const uniform = (values: number[], label: string) => {
      const b = uniformBuffer(device, values, label);
      all.push(b);
      return b;
    };
    const i32Bytes = (n: number) => n * 4;
    /** Bytes of `lines` k-packed lines of `length` int8 values (matmul.wgsl's operand layout). */
    const packedBytes = (lines: number, length: number) => lines * Math.ceil(length / 4) * 4;

    // Dataset, batch indices, counters, max-abs slots, per-example stats.
    const pixels = buffer(dataset.pixels.length, packBytes(dataset.pixels), 'pixels');
    const labels = buffer(dataset.labels.length, packBytes(dataset.labels), 'labels');
    const order = buffer(i32Bytes(steps * B), undefined, 'batch order');
    const valOrder = buffer(i32Bytes(plan.validation.length), plan.validation, 'validation order');
    const state = buffer(16, new Uint32Array([0, 0, 0, 0]), 'state');
    const y = buffer(i32Bytes(B), undefined, 'labels of the batch');
    const stats = buffer(i32Bytes(steps * B * 2), undefined, 'train stats');
    const valStats = buffer(i32Bytes(plan.validation.length * 2), undefined, 'validation stats');
    const dummy = buffer(16, undefined, 'unused binding');
    // Max-abs slots: four per layer for training, [x, e, w, w_next] (see step.wgsl), then validation x, w.
    const slot = {
      x: (l: number) => 4 * l,
      e: (l: number) => 4 * l + 1,
      w: (l: number) => 4 * l + 2,
      wNext: (l: number) => 4 * l + 3,
    };
    const valSlot = { x: (l: number) => 4 * L + l, w: (l: number) => 5 * L + l };
    const maxes = buffer(i32Bytes(6 * L), undefined, 'max-abs slots');
    const K0 = layerPlans[0].K;
    const widen = layerPlans[0].residual;
    const inputWide = widen ? buffer(i32Bytes(B * K0), undefined, 'input Q16') : dummy;
    const maxScratch = Math.max(...layerPlans.map((l) => Math.max(B * l.N, l.K * l.N, B * l.K)));
    const acc = buffer(i32Bytes(maxScratch), undefined, 'accumulator');

    const layers: LayerState[] = layerPlans.map((p) => ({
      plan: p,
      W: buffer(i32Bytes(p.K * p.N), params.subarray(p.wOffset, p.wOffset + p.K * p.N), `W${p.index}`),
      b: buffer(i32Bytes(p.N), params.subarray(p.bOffset, p.bOffset + p.N), `b${p.index}`),
      VW: buffer(i32Bytes(p.K * p.N), momentum.subarray(p.wOffset, p.wOffset + p.K * p.N), `VW${p.index}`),
      Vb: buffer(i32Bytes(p.N), momentum.subarray(p.bOffset, p.bOffset + p.N), `Vb${p.index}`),
      w8r: buffer(packedBytes(p.K, p.N), undefined, `w8r${p.index}`),
      w8c: buffer(packedBytes(p.N, p.K), undefined, `w8c${p.index}`),
      x8r: buffer(packedBytes(B, p.K), undefined, `x8r${p.index}`),
      x8c: buffer(packedBytes(p.K, B), undefined, `x8c${p.index}`),
      e8r: buffer(packedBytes(B, p.N), undefined, `e8r${p.index}`),
      e8c: buffer(packedBytes(p.N, B), undefined, `e8c${p.index}`),
      z: buffer(i32Bytes(B * p.N), undefined, `z${p.index}`),
      h: buffer(i32Bytes(B * p.N), undefined, `h${p.index}`),
      gz: buffer(i32Bytes(B * p.N), undefined, `gz${p.index}`),
      gin: p.index > 0 ? buffer(i32Bytes(B * p.K), undefined, `gin${p.index}`) : null,
    }));

    const matmul = await matmulPipeline(ctx, options.packed ?? ctx.packedDot);
    const op = async (
      name: string,
      kernel: KernelName,
      constants: Record<string, number>,
      bindings: GPUBuffer[],
      g: [number, number],
    ): Promise<Op> => {
      const pipeline = await ctx.pipeline(kernelCode(kernel), 'main', constants);
      return { name, pipeline, group: bindGroup(device, pipeline, bindings), grid: g };
    };
    const matmulOp = (name: string, shape: MatmulShape, a: GPUBuffer, b: GPUBuffer): Op => {
      const params = matmulParams(device, shape);
      all.push(params);
      return {
        name,
        pipeline: matmul,
        group: bindGroup(device, matmul, [params, a, b, acc]),
        grid: matmulGrid(shape),
      };
    };
    const maxabsOp = (name: string, x: GPUBuffer, n: number, s: number) =>
      op(name, 'maxabs', {}, [uniform([n, s], name), x, maxes], [Math.min(MAXABS_GROUPS, grid(n)[0]), 1]);
    /** x[rows][cols] → int8 by rows and by columns; tensor = null rounds half-even. */
    const quantizeOp = (
      name: string,
      x: GPUBuffer,
      [rows, cols]: [number, number],
      s: number,
      tensor: number | null,
      [byRow, byCol]: [GPUBuffer, GPUBuffer],
    ) =>
      op(
        name,
        'quantize',
        { STOCHASTIC: tensor === null ? 0 : 1 },
        [uniform([rows, cols, s, tensor ?? 0, spec.training.seed], name), x, maxes, state, byRow, byCol],
        grid(rows * Math.ceil(cols / 4) + cols * Math.ceil(rows / 4)),
      );

    /** The forward pass over `rows` examples; `val` picks validation slots and RNE weights. */
    const forwardOps = async (rows: number, val: boolean, perStep: boolean, base: number): Promise<Op[]> => {
      const ops: Op[] = [];
      const xs = (l: number) => (l === 0 ? NONE : val ? valSlot.x(l) : slot.x(l));
      const ws = (l: number) => (val ? valSlot.w(l) : slot.w(l));
      const gatherBindings = [uniform([rows, K0, base, 0], 'gather'), pixels, labels, val ? valOrder : order];
      ops.push(
        await op(
          'gather',
          'gather',
          { PER_STEP: perStep ? 1 : 0, WIDEN: widen ? 1 : 0 },
          [...gatherBindings, state, layers[0].x8r, layers[0].x8c, y, inputWide],
          grid(Math.max(rows * Math.ceil(K0 / 4) + K0 * Math.ceil(rows / 4), rows * K0)),
        ),
      );
      for (const layer of layers) {
        const { index: l, K, N, activation, residual } = layer.plan;
        if (l > 0) {
          const h = layers[l - 1].h;
          ops.push(await quantizeOp(`quantize h${l - 1}`, h, [rows, K], xs(l), null, [layer.x8r, layer.x8c]));
        }
        ops.push(matmulOp(`x·W ${l}`, { m: rows, n: N, k: K }, layer.x8r, layer.w8c));
        const last = l === L - 1;
        const hIn = residual ? (l === 0 ? inputWide : layers[l - 1].h) : dummy;
        ops.push(
          await op(
            `forward ${l}`,
            'forward',
            { ACT: activation ? ACTIVATION_CODE[activation] : 0, RESIDUAL: residual ? 1 : 0 },
            [
              uniform([rows, N, xs(l), ws(l), last ? NONE : xs(l + 1)], `forward ${l}`),
              acc,
              layer.b,
              hIn,
              maxes,
              layer.z,
              layer.h,
            ],
            grid(rows * N),
          ),
        );
      }
      const C = layerPlans[L - 1].N;
      const last = layers[L - 1];
      ops.push(
        await op(
          'softmax-xent',
          'softmaxXent',
          { TRAIN: val ? 0 : 1, PER_STEP: perStep ? 1 : 0 },
          [
            uniform([rows, C, B, base, slot.e(L - 1)], 'softmax'),
            last.h,
            y,
            state,
            maxes,
            last.gz,
            val ? valStats : stats,
          ],
          grid(rows, 64),
        ),
      );
      return ops;
    };

    // The training step, and its prologue: max |W| for the first step (later the SGD kernel provides it).
    const stepOps: Op[] = [];
    const prologue: Op[] = [];
    for (const layer of layers) {
      const { index: l, K, N } = layer.plan;
      const w8 = [layer.w8r, layer.w8c] as [GPUBuffer, GPUBuffer];
      prologue.push(await maxabsOp(`maxabs W${l}`, layer.W, K * N, slot.w(l)));
      stepOps.push(await quantizeOp(`quantize W${l}`, layer.W, [K, N], slot.w(l), TENSOR.srW(l), w8));
    }
    stepOps.push(...(await forwardOps(B, false, true, 0)));
    const { learningRateQ16, momentumQ16, weightDecayQ24 } = spec.training;
    for (let l = L - 1; l >= 0; l--) {
      const layer = layers[l];
      const { K, N } = layer.plan;
      const xs = l === 0 ? NONE : slot.x(l);
      const e8 = [layer.e8r, layer.e8c] as [GPUBuffer, GPUBuffer];
      stepOps.push(await quantizeOp(`quantize gz${l}`, layer.gz, [B, N], slot.e(l), TENSOR.srErr(l), e8));
      stepOps.push(matmulOp(`xᵀ·e ${l}`, { m: K, n: N, k: B }, layer.x8c, layer.e8c));
      stepOps.push(
        await op(
          `sgd ${l}`,
          'sgd',
          {},
          [
            uniform(
              [K, N, B, xs, slot.e(l), learningRateQ16, momentumQ16, weightDecayQ24, slot.wNext(l)],
              `sgd ${l}`,
            ),
            acc,
            layer.gz,
            maxes,
            layer.W,
            layer.VW,
            layer.b,
            layer.Vb,
          ],
          grid(K * N + N),
        ),
      );
      if (l === 0) continue;
      stepOps.push(matmulOp(`e·Wᵀ ${l}`, { m: B, n: K, k: N }, layer.e8r, layer.w8r));
      const prev = layers[l - 1];
      const residual = layer.plan.residual;
      stepOps.push(
        await op(
          `backward ${l}`,
          'backward',
          { ACT: ACTIVATION_CODE[prev.plan.activation!], RESIDUAL: residual ? 1 : 0 },
          [
            uniform([B * K, slot.e(l), slot.w(l), slot.e(l - 1)], `backward ${l}`),
            acc,
            prev.z,
            residual ? layers[l + 1].gin! : dummy,
            maxes,
            layer.gin!,
            prev.gz,
          ],
          grid(B * K),
        ),
      );
    }
    const stepKernel = (name: string, layers: number, from: number, count: number, advance: number) =>
      op(name, 'step', {}, [uniform([layers, from, count, advance], name), maxes, state], [1, 1]);
    stepOps.push(await stepKernel('next step', L, 0, 0, 1));

    // Validation: weights rounded half-even once, then full chunks of B rows and a tail.
    const valWeights: Op[] = [];
    for (const layer of layers) {
      const { index: l, K, N } = layer.plan;
      const w8 = [layer.w8r, layer.w8c] as [GPUBuffer, GPUBuffer];
      valWeights.push(await maxabsOp(`maxabs W${l} (val)`, layer.W, K * N, valSlot.w(l)));
      valWeights.push(await quantizeOp(`quantize W${l} (val)`, layer.W, [K, N], valSlot.w(l), null, w8));
    }
    const V = plan.validation.length;
    const tailRows = V % B;
    const valChunk = [
      ...(await forwardOps(B, true, true, 0)),
      await stepKernel('next chunk', 0, 4 * L, L, 1),
    ];
    const valTail =
      tailRows > 0
        ? [
            await stepKernel('clear', 0, 4 * L, L, 0),
            ...(await forwardOps(tailRows, true, false, V - tailRows)),
          ]
        : [];

    const trainer = new GpuTrainer(
      ctx,
      spec,
      plan,
      layers,
      { order, state, maxes, stats, valStats, all },
      { step: stepOps, valWeights, valChunk, valTail },
      from?.step ?? 0,
      { ...options, stepsPerSubmit: steps },
    );
    // max |W| of the initial (or resumed) weights; from then on each step's SGD folds it in.
    trainer.submit((pass) => trainer.encode(pass, prologue));
    return trainer;
  }

  private encode(pass: GPUComputePassEncoder, ops: Op[]): void {
    for (const { pipeline, group, grid: g } of ops) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(g[0], g[1]);
    }
  }

  private submit(record: (pass: GPUComputePassEncoder) => void): void {
    const encoder = this.ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    record(pass);
    pass.end();
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /**
   * Records steps [this.step, toStep) into one command buffer (toStep − this.step ≤ stepsPerSubmit)
   * and submits it without waiting; resolves to each step's summed batch loss (Q16) once it has run.
   * The command buffer ends by copying the per-example stats aside, so the next submit may follow
   * at once: the queue runs submits and buffer writes in order.
   */
  submitSteps(toStep: number): Promise<number[]> {
    const count = toStep - this.step;
    if (count < 1 || count > this.stepsPerSubmit)
      throw new Error(`cannot record ${count} steps in one submit`);
    const { device } = this.ctx;
    device.queue.writeBuffer(
      this.bufs.order,
      0,
      this.plan.batchRange(this.step, toStep) as Uint32Array<ArrayBuffer>,
    );
    device.queue.writeBuffer(this.bufs.state, 0, new Uint32Array([this.step, 0, 0, 0]));
    const bytes = count * this.B * 8;
    const staging = device.createBuffer({
      size: bytes,
      usage: MAP_READ | COPY_DST,
      label: 'stats read-back',
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let t = 0; t < count; t++) this.encode(pass, this.ops.step);
    pass.end();
    encoder.copyBufferToBuffer(this.bufs.stats, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    this.step = toStep;
    const losses = staging.mapAsync(MAP_READ).then(() => {
      const stats = new Int32Array(staging.getMappedRange().slice(0));
      staging.destroy();
      const sums: number[] = [];
      for (let t = 0; t < count; t++) {
        let sum = 0;
        for (let b = 0; b < this.B; b++) sum += stats[2 * (t * this.B + b)];
        sums.push(sum);
      }
      return sums;
    });
    losses.catch(() => staging.destroy());
    return losses;
  }

  /**
   * Runs up to `toStep` as fast as the queue allows: full submits of `stepsPerSubmit` steps, the next
   * queued before the previous one is read back (as trainWebGPURun does, minus progress and trace).
   */
  async runPipelined(toStep: number): Promise<void> {
    let previous: Promise<number[]> | null = null;
    while (this.step < toStep) {
      const submitted = this.submitSteps(Math.min(toStep, this.step + this.stepsPerSubmit));
      if (previous) await previous;
      previous = submitted;
    }
    await previous;
  }

  /** Parameters and momentum in canonical order (layer by layer: W, then b). */
  async state(): Promise<TrainState> {
    const step = this.step; // the copies below are queued now, after every step submitted so far
    const { paramCount } = this.plan.model;
    const device = this.ctx.device;
    const staging = storageBuffer(device, paramCount * 8);
    const encoder = device.createCommandEncoder();
    for (const layer of this.layers) {
      const { K, N, wOffset, bOffset } = layer.plan;
      encoder.copyBufferToBuffer(layer.W, 0, staging, wOffset * 4, K * N * 4);
      encoder.copyBufferToBuffer(layer.b, 0, staging, bOffset * 4, N * 4);
      encoder.copyBufferToBuffer(layer.VW, 0, staging, (paramCount + wOffset) * 4, K * N * 4);
      encoder.copyBufferToBuffer(layer.Vb, 0, staging, (paramCount + bOffset) * 4, N * 4);
    }
    device.queue.submit([encoder.finish()]);
    const all = new Int32Array(await readBack(device, staging, paramCount * 8));
    staging.destroy();
    return { step, params: all.slice(0, paramCount), momentum: all.slice(paramCount) };
  }

  /** Validation totals on the current weights (rounded half-even), exactly as the CPU reference. */
  async validate(): Promise<{ valCorrect: number; valCount: number; valLoss: bigint }> {
    const V = this.plan.validation.length;
    const chunks = Math.floor(V / this.B);
    this.ctx.device.queue.writeBuffer(this.bufs.state, 0, new Uint32Array([0, 0, 0, 0]));
    // Only the validation slots: the training slots carry max |W| into the next step.
    const L = this.layers.length;
    this.ctx.device.queue.writeBuffer(this.bufs.maxes, 16 * L, new Uint32Array(2 * L));
    this.submit((pass) => {
      this.encode(pass, this.ops.valWeights);
      for (let c = 0; c < chunks; c++) this.encode(pass, this.ops.valChunk);
      this.encode(pass, this.ops.valTail);
    });
    const stats = new Int32Array(await readBack(this.ctx.device, this.bufs.valStats, V * 8));
    let valCorrect = 0;
    let loss = 0;
    for (let i = 0; i < V; i++) {
      loss += stats[2 * i];
      valCorrect += stats[2 * i + 1];
    }
    return { valCorrect, valCount: V, valLoss: BigInt(loss) };
  }

  destroy(): void {
    for (const b of this.bufs.all) b.destroy();
  }

  /** Names of the dispatches of one training step, in order. */
  stepDispatchNames(): string[] {
    return this.ops.step.map((o) => o.name);
  }
}

/** Runs a whole task (or, with resumeFrom, the rest of it) and returns the final state too. */
export async function trainWebGPURun(
  ctx: GpuContext,
  spec: TaskSpec,
  dataset: Dataset,
  options: TrainOptions & GpuTrainerOptions = {},
): Promise<{ result: TaskResult; state: TrainState; dispatchesPerStep: number }> {
  const trainer = await GpuTrainer.create(ctx, spec, dataset, options.resumeFrom, options);
  try {
    const steps = spec.training.steps;
    const trace = checkpointSteps(steps, spec.checkpointEvery).filter((s) => s > trainer.step);
    const every = Math.max(1, options.progressEvery ?? 1);
    const limit = Math.min(options.stepsPerSubmit ?? DEFAULT_STEPS_PER_SUBMIT, steps);
    const checkpoints: Checkpoint[] = [];
    // Up to IN_FLIGHT submits are queued ahead, so the GPU does not idle while the CPU reads back.
    const pending: { from: number; losses: Promise<number[]>; snapshot?: Promise<TrainState> }[] = [];
    let next = 0;
    const submitNext = () => {
      while (next < trace.length && trace[next] <= trainer.step) next++;
      const from = trainer.step;
      const to = Math.min(steps, trace[next] ?? steps, from + limit);
      const losses = trainer.submitSteps(to);
      const snapshot = to === trace[next] ? trainer.state() : undefined;
      // Abandoned on abort: keep their rejections (if any) from going unhandled.
      losses.catch(() => {});
      snapshot?.catch(() => {});
      pending.push({ from, losses, snapshot });
    };
    while (trainer.step < steps || pending.length > 0) {
      options.signal?.throwIfAborted();
      while (pending.length < IN_FLIGHT && trainer.step < steps) submitNext();
      const done = pending.shift()!;
      const losses = await done.losses;
      if (options.onProgress) {
        losses.forEach((batchLossQ16, i) => {
          const step = done.from + i + 1;
          if (step % every !== 0 && step !== steps) return;
          const progress: TrainProgress = {
            step,
            steps,
            batchLossQ16,
            loss: batchLossQ16 / 2 ** 16 / spec.training.batch,
          };
          options.onProgress?.(progress);
        });
      }
      if (done.snapshot) {
        const state = await done.snapshot;
        const stateHash = stateHashOf(state);
        checkpoints.push({ step: state.step, stateHash });
        options.onCheckpoint?.(state, stateHash);
      }
    }
    options.signal?.throwIfAborted();
    const state = await trainer.state();
    if (checkpoints.length === 0) checkpoints.push({ step: state.step, stateHash: stateHashOf(state) });
    const { valCorrect, valCount, valLoss } = await trainer.validate();
    const weightsHash = hashI32(state.params);
    const result = buildTaskResult({
      taskId: taskIdOf(spec),
      valCorrect,
      valCount,
      valLoss,
      weightsHash,
      checkpoints,
    });
    return { result, state, dispatchesPerStep: trainer.dispatchesPerStep };
  } finally {
    trainer.destroy();
  }
}

// Path kept in a variable so Vite does not bundle the Node-only module into the web app.
const NODE_GPU_MODULE = '../../gpu/node.ts';
let sharedSession: Promise<GpuSession> | undefined;

/** The browser's navigator.gpu, or Dawn in Node; one session per process, shared by every task. */
export function defaultGpuSession(): Promise<GpuSession> {
  sharedSession ??= (async () => {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (gpu) return new GpuSession(gpu);
    const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
    if (!isNode) throw new GpuUnavailableError('this browser has no WebGPU (navigator.gpu is missing)');
    const node = (await import(/* @vite-ignore */ NODE_GPU_MODULE)) as typeof import('../../gpu/node.ts');
    return node.createNodeGpuSession();
  })();
  sharedSession.catch(() => {
    sharedSession = undefined;
  });
  return sharedSession;
}

/** The engine's WebGPU backend: `train(spec, dataset, { backend: 'webgpu' })` lands here. */
export async function trainWebGPU(
  spec: TaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  const ctx = options.device
    ? contextFromDevice(options.device)
    : await contextFromSession(await defaultGpuSession());
  return (await trainWebGPURun(ctx, spec, dataset, options)).result;
}
