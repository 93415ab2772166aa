/**
 * Trains a spec of either version with the engine (v1 MLP or v2 conv; the engine's `train` takes both).
 * Kept as the one place the search stack calls the engine.
 */
import { train } from '../engine/train.ts';
import type { Dataset, TrainOptions } from '../engine/types.ts';
import type { TaskResult } from '../protocol/result.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';

export function trainAny(
  spec: AnyTaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  return train(spec, dataset, options);
}
