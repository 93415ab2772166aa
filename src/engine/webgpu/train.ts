/**
 * The WebGPU backend of the integer-exact trainer: it runs the same program as the CPU reference
 * (src/engine/compile.ts compiles the spec; src/engine/train-cpu.ts runs it with the twins), with
 * the kernels of src/engine/ops/*.wgsl instead.
 *
 * A training step is a fixed list of dispatches built once: bind groups and uniforms are
 * static, and everything that changes from step to step lives in GPU buffers (the step counter that
 * keys the RNG, the max-abs slots that decide quantisation shifts, the batch indices). So many steps
 * are recorded into one compute pass and one command buffer, and nothing is read back per step:
 * only the per-example losses (for progress, once per submit), the parameters at trace checkpoints
 * (for the state hash) and the validation totals at the end.
 */

import { GpuSession, GpuUnavailableError } from '../../gpu/device.ts';
import type { Checkpoint, TaskResult } from '../../protocol/result.ts';
import { buildTaskResult } from '../../protocol/result.ts';
import { type AnyTaskSpec, taskIdOf } from '../../protocol/spec.ts';
import { checkpointSteps } from '../../protocol/trace.ts';
import { compileProgram, type Program, type StateRange } from '../compile.ts';
import { initialParams, type TrainingPlan, trainingPlan } from '../plan.ts';
import type { Invocation } from '../program.ts';
import { hashI32, stateHashOf } from '../train-cpu.ts';
import type { Dataset, TrainOptions, TrainProgress, TrainState } from '../types.ts';
import { readBack, storageBuffer } from './buffers.ts';
import { contextFromDevice, contextFromSession, type GpuContext } from './context.ts';
import {
  createProgramTensors,
  destroyGpuTensor,
  encodeOps,
  type GpuTensor,
  type RecordedOp,
  recordInvocation,
} from './program.ts';

/** Submits in flight at once: the next is queued while the previous one is read back. */
const IN_FLIGHT = 2;
const MAP_READ = 0x1;
const COPY_DST = 0x8;
/** Steps recorded per command buffer at most (between progress read-backs). */
const DEFAULT_STEPS_PER_SUBMIT = 32;

export interface GpuTrainerOptions {
  /** Steps per command buffer (default 32). */
  stepsPerSubmit?: number;
  /** Use dot4I8Packed where available (default) or force the plain i32 path. */
  packed?: boolean;
  /**
   * Stage operands in workgroup memory (the conv kernels, transposes): default on a hardware
   * adapter, off on a software one (GpuContext.software). The same bits either way.
   */
  tiled?: boolean;
}

interface RecordedSequences {
  prologue: RecordedOp[];
  step: RecordedOp[];
  valWeights: RecordedOp[];
  valChunk: RecordedOp[];
  valTail: RecordedOp[];
}

export class GpuTrainer {
  step: number;
  /** Dispatches recorded per training step. */
  readonly dispatchesPerStep: number;
  private readonly B: number;
  private readonly stepsPerSubmit: number;
  private constructor(
    readonly ctx: GpuContext,
    readonly spec: AnyTaskSpec,
    readonly plan: TrainingPlan,
    readonly program: Program,
    private readonly tensors: Map<string, GpuTensor>,
    private readonly owned: GPUBuffer[],
    private readonly ops: RecordedSequences,
    step: number,
  ) {
    this.step = step;
    this.B = spec.training.batch;
    this.dispatchesPerStep = ops.step.length;
    this.stepsPerSubmit = program.stepsPerUpload;
  }

  /**
   * Compiles the spec's program (../compile.ts), uploads its buffers and records every invocation
   * (pipeline, uniform, bind group) once; then runs the prologue.
   */
  static async create(
    ctx: GpuContext,
    spec: AnyTaskSpec,
    dataset: Dataset,
    from?: TrainState,
    options: GpuTrainerOptions = {},
  ): Promise<GpuTrainer> {
    const plan = trainingPlan(spec, dataset);
    const { paramCount } = plan.model;
    if (from) {
      if (from.params.length !== paramCount || from.momentum.length !== paramCount)
        throw new Error(`resume state has ${from.params.length} parameters, the model has ${paramCount}`);
      if (from.step < 0 || from.step > spec.training.steps)
        throw new Error(`resume step ${from.step} out of range`);
    }
    const packed = options.packed ?? ctx.packedDot;
    if (packed && !ctx.packedDot) throw new Error('dot4I8Packed is not available on this adapter');
    const params = from ? from.params : initialParams(spec, plan.model);
    const momentum = from ? from.momentum : new Int32Array(paramCount);
    const stepsPerUpload = Math.min(options.stepsPerSubmit ?? DEFAULT_STEPS_PER_SUBMIT, spec.training.steps);
    const tiled = options.tiled ?? !ctx.software;
    const program = compileProgram(spec, dataset, plan, { stepsPerUpload, tiled });
    const inputs = { dataset, validation: plan.validation, params, momentum };
    const tensors = createProgramTensors(ctx.device, program, inputs);
    const owned: GPUBuffer[] = [];
    const record = (sequence: Invocation[]) =>
      Promise.all(sequence.map((inv) => recordInvocation(ctx, inv, tensors, owned, packed)));
    const ops: RecordedSequences = {
      prologue: await record(program.prologue),
      step: await record(program.step),
      valWeights: await record(program.valWeights),
      valChunk: await record(program.valChunk),
      valTail: await record(program.valTail),
    };
    const trainer = new GpuTrainer(ctx, spec, plan, program, tensors, owned, ops, from?.step ?? 0);
    // max |W| of the initial (or resumed) weights; from then on each step's SGD folds it in.
    trainer.submit((pass) => encodeOps(pass, ops.prologue));
    return trainer;
  }

  private buffer(name: string): GPUBuffer {
    const main = this.tensors.get(name)?.main;
    if (!main) throw new Error(`no GPU buffer '${name}'`);
    return main;
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
      this.buffer('order'),
      0,
      this.plan.batchRange(this.step, toStep) as Uint32Array<ArrayBuffer>,
    );
    device.queue.writeBuffer(this.buffer('state'), 0, new Uint32Array([this.step, 0, 0, 0]));
    const bytes = count * this.B * 8;
    const staging = device.createBuffer({
      size: bytes,
      usage: MAP_READ | COPY_DST,
      label: 'stats read-back',
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let t = 0; t < count; t++) encodeOps(pass, this.ops.step);
    pass.end();
    encoder.copyBufferToBuffer(this.buffer('stats'), 0, staging, 0, bytes);
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
    const copy = ({ buffer, offset, length }: StateRange, base: number) =>
      encoder.copyBufferToBuffer(this.buffer(buffer), 0, staging, (base + offset) * 4, length * 4);
    for (const range of this.program.params) copy(range, 0);
    for (const range of this.program.momentum) copy(range, paramCount);
    device.queue.submit([encoder.finish()]);
    const all = new Int32Array(await readBack(device, staging, paramCount * 8));
    staging.destroy();
    return { step, params: all.slice(0, paramCount), momentum: all.slice(paramCount) };
  }

  /** Validation totals on the current weights (rounded half-even), exactly as the CPU reference. */
  async validate(): Promise<{ valCorrect: number; valCount: number; valLoss: bigint }> {
    const V = this.plan.validation.length;
    this.ctx.device.queue.writeBuffer(this.buffer('state'), 0, new Uint32Array([0, 0, 0, 0]));
    // Only the validation slots: the training slots carry max |W| into the next step.
    const { from, count } = this.program.valSlots;
    this.ctx.device.queue.writeBuffer(this.buffer('maxes'), from * 4, new Uint32Array(count));
    this.submit((pass) => {
      encodeOps(pass, this.ops.valWeights);
      for (let c = 0; c < this.program.valChunks; c++) encodeOps(pass, this.ops.valChunk);
      encodeOps(pass, this.ops.valTail);
    });
    const stats = new Int32Array(await readBack(this.ctx.device, this.buffer('valStats'), V * 8));
    let valCorrect = 0;
    let loss = 0;
    for (let i = 0; i < V; i++) {
      loss += stats[2 * i];
      valCorrect += stats[2 * i + 1];
    }
    return { valCorrect, valCount: V, valLoss: BigInt(loss) };
  }

  destroy(): void {
    for (const t of this.tensors.values()) destroyGpuTensor(t);
    for (const b of this.owned) b.destroy();
  }

  /** Names of the dispatches of one training step, in order. */
  stepDispatchNames(): string[] {
    return this.ops.step.map((o) => o.label);
  }
}

/** Runs a whole task (or, with resumeFrom, the rest of it) and returns the final state too. */
export async function trainWebGPURun(
  ctx: GpuContext,
  spec: AnyTaskSpec,
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
  spec: AnyTaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  const ctx = options.device
    ? contextFromDevice(options.device)
    : await contextFromSession(await defaultGpuSession());
  return (await trainWebGPURun(ctx, spec, dataset, options)).result;
}
