/**
 * The engine's public types, shared by every backend (CPU reference and WebGPU).
 *
 * `train(spec, dataset, options)` in ./train.ts resolves to a TaskResult; the backends implement
 * `(spec, dataset, options) => Promise<TaskResult>` with exactly these options.
 */
import type { TaskResult } from '../protocol/result.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';

export type Backend = 'cpu' | 'webgpu';

/**
 * A decoded dataset: `count` examples of `features` u8 values each, row-major, and one u8 label
 * per example in [0, classes). `sha256` is the hash of the canonical binary it was decoded from.
 */
export interface Dataset {
  name: string;
  sha256: `0x${string}`;
  count: number;
  features: number;
  classes: number;
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** Emitted after a training step (every `progressEvery` steps and the last one). */
export interface TrainProgress {
  /** Steps completed so far (1-based: 1 after the first step). */
  step: number;
  steps: number;
  /** Sum of the per-example losses of this step's batch, Q16 (exact, backend-independent). */
  batchLossQ16: number;
  /** batchLossQ16 / 2^16 / batch, for display only. */
  loss: number;
}

/**
 * The optimiser state at a step boundary: all parameters and momentum as i32, in canonical parameter
 * order (layer by layer: W [K][N] row-major, then b [N]). `step` = steps completed.
 */
export interface TrainState {
  step: number;
  params: Int32Array;
  momentum: Int32Array;
}

export interface TrainOptions {
  backend?: Backend;
  onProgress?: (progress: TrainProgress) => void;
  /** Emit progress every this many steps (default 1). */
  progressEvery?: number;
  /** Aborting rejects the promise with the signal's reason at the next step boundary. */
  signal?: AbortSignal;
  /** Resume from this state instead of the initial weights (e.g. a referee recomputing an interval). */
  resumeFrom?: TrainState;
  /** Called with a copy of the state at every trace checkpoint (after its stateHash is taken). */
  onCheckpoint?: (state: TrainState, stateHash: `0x${string}`) => void;
  /**
   * CPU only: the kernel set, 'wasm' (WASM SIMD) or 'ts' (the TypeScript twins); the same bits.
   * Default: $CAMBRIAN_CPU_KERNELS, else wasm where WebAssembly SIMD is available.
   */
  cpuKernels?: 'ts' | 'wasm';
  /** WebGPU only: a device to use instead of acquiring one. */
  device?: GPUDevice;
}

export type TrainFn = (spec: AnyTaskSpec, dataset: Dataset, options?: TrainOptions) => Promise<TaskResult>;
