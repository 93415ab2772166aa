/**
 * The CPU reference trainer: runs the program a spec compiles to (./compile.ts: the training step of
 * docs/ARITHMETIC.md as op invocations) with each op's CPU twin. It is the oracle for the WebGPU backend, the fallback where WebGPU is missing
 * and the dispute referee (it can resume from a state and stop at any step).
 */
import { type Hex, keccak256 } from 'viem';
import type { Checkpoint, TaskResult } from '../protocol/result.ts';
import { buildTaskResult } from '../protocol/result.ts';
import { type AnyTaskSpec, taskIdOf as taskIdOfSpec } from '../protocol/spec.ts';
import { checkpointSteps } from '../protocol/trace.ts';
import { compileProgram, type Program } from './compile.ts';
import { OPS } from './ops/index.ts';
import { initialParams, type TrainingPlan, trainingPlan } from './plan.ts';
import { CpuProgram, wasmBytesFor } from './program-cpu.ts';
import type { Dataset, TrainOptions, TrainProgress, TrainState } from './types.ts';
import { type KernelChoice, resolveKernels, WasmEngine } from './wasm/engine.ts';

export type { KernelChoice } from './wasm/engine.ts';

export interface CpuTrainerOptions {
  /**
   * 'wasm': the WASM SIMD kernels (./wasm/ops.ts) for the hot ops; 'ts': the TypeScript twins
   * only (the readable reference). The same bits either way. Default: $CAMBRIAN_CPU_KERNELS, else
   * wasm where WebAssembly SIMD is available.
   */
  kernels?: KernelChoice;
}

export { INPUT_SHIFT } from './ops/gather.ts';

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

export interface StepTotals {
  lossQ16: number;
  correct: number;
}

export interface ValidationTotals {
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
}

/**
 * A trainer over one spec and dataset: runs the compiled program (./compile.ts) with the CPU twins
 * and holds the state (parameters and momentum in canonical order, which the program's parameter
 * buffers are views of).
 */
export class CpuTrainer {
  readonly plan: TrainingPlan;
  readonly program: Program;
  readonly params: Int32Array;
  readonly momentum: Int32Array;
  step = 0;
  /** The kernels this trainer runs ('wasm' falls back to 'ts' where SIMD is missing). */
  readonly kernels: KernelChoice;
  private readonly grads: Int32Array;
  private readonly cpu: CpuProgram;

  constructor(
    readonly spec: AnyTaskSpec,
    readonly dataset: Dataset,
    from?: TrainState,
    options: CpuTrainerOptions = {},
  ) {
    this.plan = trainingPlan(spec, dataset);
    const { paramCount } = this.plan.model;
    if (from) {
      if (from.params.length !== paramCount || from.momentum.length !== paramCount) {
        throw new Error(`resume state has ${from.params.length} parameters, the model has ${paramCount}`);
      }
      if (from.step < 0 || from.step > spec.training.steps)
        throw new Error(`resume step ${from.step} out of range`);
    }
    this.kernels = resolveKernels(options.kernels);
    this.program = compileProgram(spec, dataset, this.plan);
    let engine: WasmEngine | null = null;
    if (this.kernels === 'wasm') {
      // One memory per trainer, sized once: the parameter vectors, the program's buffers, scratch.
      engine = new WasmEngine(wasmBytesFor(this.program, 3 * (Math.ceil((paramCount * 4) / 16) * 16)));
      this.params = engine.alloc(Int32Array, paramCount);
      this.momentum = engine.alloc(Int32Array, paramCount);
      this.grads = engine.alloc(Int32Array, paramCount);
      this.params.set(from ? from.params : initialParams(spec, this.plan.model));
      if (from) this.momentum.set(from.momentum);
    } else {
      this.params = from ? from.params.slice() : initialParams(spec, this.plan.model);
      this.momentum = from ? from.momentum.slice() : new Int32Array(paramCount);
      this.grads = new Int32Array(paramCount);
    }
    this.step = from?.step ?? 0;
    this.cpu = new CpuProgram(
      this.program,
      dataset,
      this.plan.validation,
      this.params,
      this.momentum,
      engine,
    );
    this.cpu.run(this.program.prologue);
  }

  state(): TrainState {
    return { step: this.step, params: this.params.slice(), momentum: this.momentum.slice() };
  }

  /** Uploads this step's batch indices and counters, as the GPU does per submit. */
  private loadStep(): void {
    (this.cpu.get('order') as Uint32Array).set(this.plan.batchIndices(this.step));
    (this.cpu.get('state') as Uint32Array).set([this.step, 0, 0, 0]);
  }

  private stepTotals(): StepTotals {
    const stats = this.cpu.get('stats') as Int32Array;
    let lossQ16 = 0;
    let correct = 0;
    for (let b = 0; b < this.spec.training.batch; b++) {
      lossQ16 += stats[2 * b];
      correct += stats[2 * b + 1];
    }
    return { lossQ16, correct };
  }

  /** One training step (this.step → this.step + 1). */
  runStep(): StepTotals {
    this.loadStep();
    this.cpu.run(this.program.step);
    this.step += 1;
    return this.stepTotals();
  }

  /** Op calls that ran as WASM kernels, and those that fell back to their TypeScript twin. */
  get kernelCalls(): { wasm: number; ts: number } {
    return { wasm: this.cpu.wasmCalls, ts: this.cpu.tsCalls };
  }

  /** The gradient buffer (Q24, canonical parameter order) of the last computeGradients(). */
  get gradients(): Int32Array {
    return this.grads;
  }

  /**
   * Forward and backward of the current step's batch into `gradients`; parameters are unchanged.
   * Runs the step with each sgd op at learning rate, momentum and decay 0 writing its momentum into
   * the gradient vector (v = g exactly, w unchanged), and without the step boundary.
   */
  computeGradients(): StepTotals {
    const maxes = (this.cpu.get('maxes') as Uint32Array).slice();
    this.loadStep();
    const { step: sequence, momentum } = this.program;
    for (const inv of sequence) {
      if (inv.op === OPS.step) continue;
      if (inv.op !== OPS.sgd) {
        this.cpu.invoke(inv);
        continue;
      }
      const grad = (slot: string) => {
        const range = momentum.find((r) => r.buffer === inv.bind[slot])!;
        return this.grads.subarray(range.offset, range.offset + range.length);
      };
      const params = { ...inv.params, learningRateQ16: 0, momentumQ16: 0, weightDecayQ24: 0 };
      this.cpu.invoke(inv, params, { vw: grad('vw'), vb: grad('vb') });
    }
    (this.cpu.get('maxes') as Uint32Array).set(maxes);
    return this.stepTotals();
  }

  /** Validation: forward in chunks of `batch` in validation order, weights rounded half-even. */
  validate(): ValidationTotals {
    const { program } = this;
    const maxes = this.cpu.get('maxes') as Uint32Array;
    (this.cpu.get('state') as Uint32Array).fill(0);
    maxes.fill(0, program.valSlots.from, program.valSlots.from + program.valSlots.count);
    this.cpu.run(program.valWeights);
    for (let c = 0; c < program.valChunks; c++) this.cpu.run(program.valChunk);
    this.cpu.run(program.valTail);
    const stats = this.cpu.get('valStats') as Int32Array;
    let valCorrect = 0;
    let loss = 0;
    for (let i = 0; i < stats.length / 2; i++) {
      loss += stats[2 * i];
      valCorrect += stats[2 * i + 1];
    }
    return { valCorrect, valCount: stats.length / 2, valLoss: BigInt(loss) };
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
  spec: AnyTaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<{ result: TaskResult; state: TrainState }> {
  const trainer = new CpuTrainer(spec, dataset, options.resumeFrom, { kernels: options.cpuKernels });
  const { checkpoints } = await runSteps(trainer, spec.training.steps, options);
  if (checkpoints.length === 0) {
    // Resumed at the last step: the final state is the only checkpoint there is.
    checkpoints.push({ step: trainer.step, stateHash: stateHashOf(trainer) });
  }
  return { result: resultOf(trainer, checkpoints), state: trainer.state() };
}

export async function trainCpu(
  spec: AnyTaskSpec,
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
  spec: AnyTaskSpec,
  dataset: Dataset,
  from: TrainState,
  toStep: number,
  options: Omit<TrainOptions, 'resumeFrom'> = {},
): Promise<{ state: TrainState; checkpoints: Checkpoint[] }> {
  const trainer = new CpuTrainer(spec, dataset, from, { kernels: options.cpuKernels });
  const { checkpoints } = await runSteps(trainer, toStep, options);
  return { state: trainer.state(), checkpoints };
}
