/**
 * One entry for exporting any accepted spec's final parameters as ONNX: v1 specs give the MLP graph
 * (./mlp.ts), v2 specs the conv graph (./cnn.ts). Used by `trainAndExport` and by the web app's
 * engine worker (leaderboard download and try-it), so both export every track. Browser-safe.
 */
import { type AnyTaskSpec, isV2 } from '../protocol/spec.ts';
import { buildCnnOnnx, cnnWeightsFromParams } from './cnn.ts';
import { buildMlpOnnx, type ExportOptions, type WeightMode, weightsFromParams } from './mlp.ts';

export function buildOnnx(
  spec: AnyTaskSpec,
  params: Int32Array,
  options: ExportOptions & { weights?: WeightMode } = {},
): Uint8Array {
  const mode = options.weights ?? 'int8';
  if (isV2(spec)) return buildCnnOnnx(spec.model, cnnWeightsFromParams(spec.model, params, mode), options);
  return buildMlpOnnx(spec.model, weightsFromParams(spec.model, params, mode), options);
}

/** The model's doc string: what the input and output are, for either kind. */
export function onnxDoc(spec: AnyTaskSpec): string {
  if (!isV2(spec))
    return 'Cambrian MLP: input pixels float32 [N, inputs] in [0, 1], output logits float32 [N, classes]';
  const { channels, height, width } = spec.model.input;
  return `Cambrian CNN: input pixels float32 [N, ${channels * height * width}] in [0, 1] ([${channels}][${height}][${width}] rows), output logits float32 [N, classes]`;
}
