/**
 * Runs an exported model with onnxruntime-web (wasm) on u8 examples: used to check an export
 * against the engine's validation accuracy, in Node and in the browser alike.
 */
import * as ort from 'onnxruntime-web';
import { INPUT_NAME, OUTPUT_NAME } from './mlp.ts';

export interface OnnxAccuracy {
  correct: number;
  count: number;
}

/**
 * Classifies `indices` of a u8 dataset (pixels example-major, `features` per example) and counts
 * argmax(logits) = label, ties to the lowest index as the engine counts them.
 */
export async function onnxAccuracy(
  model: Uint8Array,
  data: { pixels: Uint8Array; labels: Uint8Array; features: number },
  indices: ArrayLike<number>,
  chunk = 512,
): Promise<OnnxAccuracy> {
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const { features } = data;
  let correct = 0;
  try {
    for (let start = 0; start < indices.length; start += chunk) {
      const rows = Math.min(chunk, indices.length - start);
      const input = new Float32Array(rows * features);
      for (let r = 0; r < rows; r++) {
        const base = indices[start + r] * features;
        for (let f = 0; f < features; f++) input[r * features + f] = data.pixels[base + f] / 255;
      }
      const out = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', input, [rows, features]) });
      const logits = out[OUTPUT_NAME].data as Float32Array;
      const classes = logits.length / rows;
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
        if (best === data.labels[indices[start + r]]) correct++;
      }
    }
  } finally {
    await session.release();
  }
  return { correct, count: indices.length };
}
