/**
 * Train a task and export it as ONNX (browser-safe: the caller supplies the dataset, so the web
 * app's leaderboard can do the same as `cambrian export`).
 */
import { keccak256 } from 'viem';
import { train } from '../engine/train.ts';
import type { Backend, Dataset, TrainState } from '../engine/types.ts';
import type { TaskResult } from '../protocol/result.ts';
import { type TaskSpec, taskIdOf } from '../protocol/spec.ts';
import { buildOnnx, onnxDoc } from './build.ts';
import type { WeightMode } from './mlp.ts';

export interface ExportedModel {
  result: TaskResult;
  /** Final i32 master parameters (Q24, canonical order); keccak256 of them is result.weightsHash. */
  params: Int32Array;
  onnx: Uint8Array;
}

/** keccak256 of i32 values, little-endian (the weightsHash of docs/ARITHMETIC.md). */
export function weightsHashOf(params: Int32Array): string {
  const bytes = new Uint8Array(params.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < params.length; i++) view.setInt32(i * 4, params[i], true);
  return keccak256(bytes);
}

export async function trainAndExport(
  spec: TaskSpec,
  dataset: Dataset,
  options: { backend?: Backend; weights?: WeightMode; signal?: AbortSignal } = {},
): Promise<ExportedModel> {
  let final: TrainState | undefined;
  const result = await train(spec, dataset, {
    backend: options.backend,
    signal: options.signal,
    onCheckpoint: (state) => {
      if (state.step === spec.training.steps) final = state;
    },
  });
  if (!final) throw new Error('the engine reported no checkpoint at the last step');
  const params = final.params;
  // The captured state must be the one the result commits to.
  if (weightsHashOf(params) !== result.weightsHash)
    throw new Error('final parameters do not match the weightsHash');
  const onnx = buildOnnx(spec, params, {
    weights: options.weights,
    doc: onnxDoc(spec),
    metadata: {
      taskId: taskIdOf(spec),
      digest: result.digest,
      weightsHash: result.weightsHash,
      valCorrect: String(result.valCorrect),
      valCount: String(result.valCount),
      dataset: spec.dataset.name,
      weights: options.weights ?? 'int8',
    },
  });
  return { result, params, onnx };
}
