/**
 * The engine's one entry point for both backends and both spec versions (v1 MLP, v2 conv): `train(spec, dataset, options)` resolves to the
 * task's result; progress, cancellation and resuming work the same on each (see ./types.ts).
 * The WebGPU backend is imported on demand so CPU-only users never load it.
 */
import type { TaskResult } from '../protocol/result.ts';
import { type AnyTaskSpec, parseAnyTaskSpec } from '../protocol/spec.ts';
import { trainCpu } from './train-cpu.ts';
import type { Dataset, TrainOptions } from './types.ts';

export async function train(
  spec: AnyTaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  const valid = parseAnyTaskSpec(spec);
  const backend = options.backend ?? 'cpu';
  if (backend === 'cpu') return trainCpu(valid, dataset, options);
  if (backend === 'webgpu') {
    const { trainWebGPU } = await import('./webgpu/train.ts');
    return trainWebGPU(valid, dataset, options);
  }
  throw new Error(`unknown backend '${backend as string}' (cpu or webgpu)`);
}
