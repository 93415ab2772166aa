/**
 * Trains a spec of either version with the engine. The engine's `train()` takes v1 specs until the
 * v2 trainers land (issue 13, the `engine` branch); a v2 spec then fails with a clear message
 * instead of a schema error, so a conv search reports "not trainable here" per trial.
 */
import { train } from '../engine/train.ts';
import type { Dataset, TrainOptions } from '../engine/types.ts';
import type { TaskResult } from '../protocol/result.ts';
import { type AnyTaskSpec, isV2 } from '../protocol/spec.ts';

export async function trainAny(
  spec: AnyTaskSpec,
  dataset: Dataset,
  options: TrainOptions = {},
): Promise<TaskResult> {
  if (isV2(spec))
    throw new Error('this engine build trains v1 (MLP) specs only; conv (v2) specs need the v2 trainer');
  return train(spec, dataset, options);
}
