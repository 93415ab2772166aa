/**
 * The CPU reference trainer: composes the integer ops of ./ops into the training step of
 * docs/ARITHMETIC.md. It is the oracle for the WebGPU backend, the fallback where WebGPU is missing
 * and the dispute referee (it can resume from a state and stop at any step).
 */
import { type Hex, keccak256 } from 'viem';
import type { Checkpoint, TaskResult } from '../protocol/result.ts';
import { buildTaskResult } from '../protocol/result.ts';
import { type TaskSpec, taskIdOf as taskIdOfSpec } from '../protocol/spec.ts';
import { checkpointSteps } from '../protocol/trace.ts';
import { activate, activationBackward } from './ops/activation.ts';
import { columnSums, matmulEWt, matmulXtE, matmulXW, rescaleAddBias, rescaleAll } from './ops/matmul.ts';
import { quantizeRNE, quantizeStochastic } from './ops/quantize.ts';
import { rngKey, TENSOR } from './ops/rng.ts';
import { sgdStep } from './ops/sgd.ts';
import { softmaxXent } from './ops/softmax-xent.ts';
import { initialParams, type LayerPlan, type TrainingPlan, trainingPlan } from './plan.ts';
import type { Dataset, TrainOptions, TrainProgress, TrainState } from './types.ts';

/** Input pixel p becomes the operand p >> 1 with shift 9 (value (p >> 1) / 128). */
export const INPUT_SHIFT = 9;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1)
  throw new Error('the engine needs a little-endian host');

/** keccak256 of i32 arrays, little-endian, concatenated. */
export function hashI32(...arrays: Int32Array[]): Hex {
  const total = arrays.reduce((n, a) => n + a.byteLength, 0);
  const bytes = new Uint8Array(total);
  let o = 0;
  for (const a of arrays) {
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), o);
    o += a.byteLength;
  }
  return keccak256(bytes);
}

export function stateHashOf(state: Pick<TrainState, 'params' | 'momentum'>): Hex {
  return hashI32(state.params, state.momentum);
}

interface LayerBuffers {
  plan: LayerPlan;
  x8: Int8Array; // [B][K] input operand
  sx: number;
  w8: Int8Array; // [K][N]
  sw: number;
  z: Int32Array; // [B][N] pre-activation, Q16
  out: Int32Array; // [B][N] output h, Q16 (hidden layers)
  gz: Int32Array; // [B][N] error at z, Q24
  e8: Int8Array; // [B][N]
  gin: Int32Array; // [B][K] error at the layer input, Q24 (layers > 0)
}

export interface StepTotals {
  lossQ16: number;
  correct: number;
}

export interface ValidationTotals {
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
}

/** A trainer over one spec and dataset; holds the state and the step's scratch buffers. */
export class CpuTrainer {
  readonly plan: TrainingPlan;
  readonly params: Int32Array;
  readonly momentum: Int32Array;
  step = 0;
  private readonly grads: Int32Array;
  private readonly layers: LayerBuffers[];
  private readonly input: Int32Array; // [B][inputs] Q16, for a residual first layer
  private readonly scratch: Int32Array;
  private readonly batch: Uint32Array;
  private readonly labels: Uint8Array;

  constructor(
    readonly spec: TaskSpec,
    readonly dataset: Dataset,
    from?: TrainState,
  ) {
    this.plan = trainingPlan(spec, dataset);
    const { paramCount, layers } = this.plan.model;
    const B = spec.training.batch;
    if (from) {
      if (from.params.length !== paramCount || from.momentum.length !== paramCount) {
        throw new Error(`resume state has ${from.params.length} parameters, the model has ${paramCount}`);
      }
      if (from.step < 0 || from.step > spec.training.steps)
        throw new Error(`resume step ${from.step} out of range`);
    }
    this.params = from ? from.params.slice() : initialParams(spec, this.plan.model);
    this.momentum = from ? from.momentum.slice() : new Int32Array(paramCount);
    this.step = from?.step ?? 0;
    this.grads = new Int32Array(paramCount);
    this.layers = layers.map((plan) => ({
      plan,
      x8: new Int8Array(B * plan.K),
      sx: 0,
      w8: new Int8Array(plan.K * plan.N),
      sw: 0,
      z: new Int32Array(B * plan.N),
      out: new Int32Array(plan.activation ? B * plan.N : 0),
      gz: new Int32Array(B * plan.N),
      e8: new Int8Array(B * plan.N),
      gin: new Int32Array(plan.index > 0 ? B * plan.K : 0),
    }));
    this.input = new Int32Array(layers[0].residual ? B * layers[0].K : 0);
    this.scratch = new Int32Array(Math.max(...layers.map((l) => Math.max(l.K * l.N, B * l.N))));
    this.batch = new Uint32Array(B);
    this.labels = new Uint8Array(B);
  }

  state(): TrainState {
    return { step: this.step, params: this.params.slice(), momentum: this.momentum.slice() };
  }

  /** Loads the batch's input operands (pixel >> 1, shift 9) and labels; rows = indices.length. */
  private loadInput(indices: ArrayLike<number>, rows: number): void {
    const { pixels, labels, features } = this.dataset;
    const first = this.layers[0];
    for (let b = 0; b < rows; b++) {
      const src = indices[b] * features;
      for (let k = 0; k < features; k++) first.x8[b * features + k] = pixels[src + k] >> 1;
      this.labels[b] = labels[indices[b]];
    }
    first.sx = INPUT_SHIFT;
    if (this.input.length > 0) {
      for (let i = 0; i < rows * features; i++) this.input[i] = first.x8[i] << (16 - 7);
    }
  }

  /** Forward over `rows` loaded examples with the current w8/sw; returns the logits buffer. */
  private forward(rows: number): Int32Array {
    const n = this.layers.length;
    for (let l = 0; l < n; l++) {
      const L = this.layers[l];
      const { K, N, activation, residual } = L.plan;
      if (l > 0) L.sx = quantizeRNE(this.layers[l - 1].out, L.x8, rows * K);
      matmulXW(L.x8, L.w8, rows, K, N, this.scratch);
      const bias = this.params.subarray(L.plan.bOffset, L.plan.bOffset + N);
      rescaleAddBias(this.scratch, rows, N, L.sx + L.sw - 24, bias, 8, L.z);
      if (activation) {
        activate(activation, L.z, L.out, rows * N);
        if (residual) {
          const prev = l === 0 ? this.input : this.layers[l - 1].out;
          for (let i = 0; i < rows * N; i++) L.out[i] = (L.out[i] + prev[i]) | 0;
        }
      }
    }
    return this.layers[n - 1].z;
  }

  /** One training step (this.step → this.step + 1). */
  runStep(): StepTotals {
    const totals = this.computeGradients();
    const { learningRateQ16, momentumQ16, weightDecayQ24 } = this.spec.training;
    sgdStep(
      this.params,
      this.momentum,
      this.grads,
      this.params.length,
      learningRateQ16,
      momentumQ16,
      weightDecayQ24,
    );
    this.step += 1;
    return totals;
  }

  /** The gradient buffer (Q24, canonical parameter order) of the last computeGradients(). */
  get gradients(): Int32Array {
    return this.grads;
  }

  /** Forward and backward of the current step's batch into `gradients`; parameters are unchanged. */
  computeGradients(): StepTotals {
    const { spec } = this;
    const B = spec.training.batch;
    const seed = spec.training.seed;
    const t = this.step;
    this.loadInput(this.plan.batchIndices(t, this.batch), B);
    for (const L of this.layers) {
      const { wOffset, K, N, index } = L.plan;
      const W = this.params.subarray(wOffset, wOffset + K * N);
      L.sw = quantizeStochastic(W, L.w8, rngKey(seed, t, TENSOR.srW(index)));
    }
    const logits = this.forward(B);
    const last = this.layers[this.layers.length - 1];
    const totals = softmaxXent(logits, this.labels, B, last.plan.N, last.gz, B);

    for (let l = this.layers.length - 1; l >= 0; l--) {
      const L = this.layers[l];
      const { K, N, wOffset, bOffset, index } = L.plan;
      const se = quantizeStochastic(L.gz, L.e8, rngKey(seed, t, TENSOR.srErr(index)));
      matmulXtE(L.x8, L.e8, B, K, N, this.scratch);
      rescaleAll(this.scratch, L.sx + se - 16, this.grads.subarray(wOffset, wOffset + K * N), K * N);
      columnSums(L.gz, B, N, this.grads.subarray(bOffset, bOffset + N));
      if (l === 0) continue;
      matmulEWt(L.e8, L.w8, B, K, N, L.gin);
      rescaleAll(L.gin, se + L.sw - 24, L.gin, B * K);
      if (L.plan.residual && l < this.layers.length - 1) {
        const above = this.layers[l + 1].gin; // error at this layer's output
        for (let i = 0; i < B * K; i++) L.gin[i] = (L.gin[i] + above[i]) | 0;
      }
      const prev = this.layers[l - 1];
      activationBackward(prev.plan.activation!, prev.z, L.gin, prev.gz, B * K);
    }
    // A residual first layer also passes its output error to the input, which has no parameters.
    return totals;
  }

  /** Validation: forward in chunks of `batch` in validation order, weights rounded half-even. */
  validate(): ValidationTotals {
    const B = this.spec.training.batch;
    const validation = this.plan.validation;
    for (const L of this.layers) {
      const { wOffset, K, N } = L.plan;
      L.sw = quantizeRNE(this.params.subarray(wOffset, wOffset + K * N), L.w8);
    }
    let valCorrect = 0;
    let lossQ16 = 0n;
    const C = this.spec.model.classes;
    for (let start = 0; start < validation.length; start += B) {
      const rows = Math.min(B, validation.length - start);
      this.loadInput(validation.subarray(start, start + rows), rows);
      const logits = this.forward(rows);
      const totals = softmaxXent(logits, this.labels, rows, C, null, 1);
      valCorrect += totals.correct;
      lossQ16 += BigInt(totals.lossQ16);
    }
    return { valCorrect, valCount: validation.length, valLoss: lossQ16 };
  }
}

/** Yield to the event loop this often so progress, workers' messages and aborts get through. */
const YIELD_EVERY_MS = 25;

const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export interface CpuRun {
  trainer: CpuTrainer;
  /** Checkpoints taken during this run (steps after the start state's). */
  checkpoints: Checkpoint[];
}

/**
 * Runs steps from the trainer's current step up to `toStep`, taking a checkpoint at every trace step
 * passed, emitting progress and honouring the abort signal.
 */
export async function runSteps(
  trainer: CpuTrainer,
  toStep: number,
  options: TrainOptions = {},
): Promise<CpuRun> {
  const { spec } = trainer;
  const steps = spec.training.steps;
  if (toStep > steps || toStep < trainer.step)
    throw new Error(`cannot run from step ${trainer.step} to ${toStep}`);
  const traceSteps = new Set(checkpointSteps(steps, spec.checkpointEvery));
  const every = Math.max(1, options.progressEvery ?? 1);
  const checkpoints: Checkpoint[] = [];
  let lastYield = Date.now();
  while (trainer.step < toStep) {
    options.signal?.throwIfAborted();
    const totals = trainer.runStep();
    const step = trainer.step;
    if (options.onProgress && (step % every === 0 || step === toStep)) {
      const progress: TrainProgress = {
        step,
        steps,
        batchLossQ16: totals.lossQ16,
        loss: totals.lossQ16 / 2 ** 16 / spec.training.batch,
      };
      options.onProgress(progress);
    }
    if (traceSteps.has(step)) {
      const stateHash = stateHashOf(trainer);
      checkpoints.push({ step, stateHash });
      options.onCheckpoint?.(trainer.state(), stateHash);
    }
    if (Date.now() - lastYield >= YIELD_EVERY_MS) {
      await yieldToEventLoop();
      lastYield = Date.now();
    }
  }
  options.signal?.throwIfAborted();
  return { trainer, checkpoints };
}

/** Builds the result of a finished run (validation, hashes, trace, digest). */
export function resultOf(trainer: CpuTrainer, checkpoints: Checkpoint[]): TaskResult {
  const { valCorrect, valCount, valLoss } = trainer.validate();
  const taskId = taskIdOfSpec(trainer.spec);
  return buildTaskResult({
    taskId,
    valCorrect,
    valCount,
    valLoss,
    weightsHash: hashI32(trainer.params),
    checkpoints,
  });
}

/**
 * Trains a task on the CPU to its last step. With `resumeFrom`, starts from that state and the
 * result's trace holds only the checkpoints after it (the referee's use); otherwise it is the full task.
 */
export async function trainCpuRun(
  spec: TaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<{ result: TaskResult; state: TrainState }> {
  const trainer = new CpuTrainer(spec, dataset, options.resumeFrom);
  const { checkpoints } = await runSteps(trainer, spec.training.steps, options);
  if (checkpoints.length === 0) {
    // Resumed at the last step: the final state is the only checkpoint there is.
    checkpoints.push({ step: trainer.step, stateHash: stateHashOf(trainer) });
  }
  return { result: resultOf(trainer, checkpoints), state: trainer.state() };
}

export async function trainCpu(
  spec: TaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  return (await trainCpuRun(spec, dataset, options)).result;
}

/**
 * The referee's primitive: from an agreed state, recompute up to `toStep` and return the state there
 * with the checkpoints passed on the way.
 */
export async function runCpuInterval(
  spec: TaskSpec,
  dataset: Dataset,
  from: TrainState,
  toStep: number,
  options: Omit<TrainOptions, 'resumeFrom'> = {},
): Promise<{ state: TrainState; checkpoints: Checkpoint[] }> {
  const trainer = new CpuTrainer(spec, dataset, from);
  const { checkpoints } = await runSteps(trainer, toStep, options);
  return { state: trainer.state(), checkpoints };
}
