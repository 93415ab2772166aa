/**
 * The engine's one entry point for both backends: `train(spec, dataset, options)` resolves to the
 * task's result; progress, cancellation and resuming work the same on each (see ./types.ts).
 */
import type { TaskResult } from '../protocol/result.ts';
import { parseTaskSpec, type TaskSpec } from '../protocol/spec.ts';
import { trainCpu } from './train-cpu.ts';
import type { Dataset, TrainFn, TrainOptions } from './types.ts';

// TODO: a literal import once src/engine/webgpu/train.ts exists (the GPU backend is written in parallel).
const WEBGPU_MODULE = './webgpu/train.ts';

export async function train(
  spec: TaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  const valid = parseTaskSpec(spec);
  const backend = options.backend ?? 'cpu';
  if (backend === 'cpu') return trainCpu(valid, dataset, options);
  if (backend === 'webgpu') {
    const { trainWebGPU } = (await import(/* @vite-ignore */ WEBGPU_MODULE)) as { trainWebGPU: TrainFn };
    return trainWebGPU(valid, dataset, options);
  }
  throw new Error(`unknown backend '${backend as string}' (cpu or webgpu)`);
}
