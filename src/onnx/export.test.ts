import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { splitIndices } from '../engine/plan.ts';
import { architectureOf, toTaskSpec } from '../nas/space.ts';
import { TRACKS } from '../nas/tracks.ts';
import type { TaskSpec } from '../protocol/spec.ts';
import { onnxAccuracy } from './evaluate.ts';
import { trainAndExport } from './export.ts';

async function exportedVsEngine(spec: TaskSpec) {
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  const { result, onnx } = await trainAndExport(spec, dataset);
  const { validation } = splitIndices(spec, dataset.count);
  const onnxAcc = await onnxAccuracy(onnx, dataset, validation);
  return {
    engine: result.valCorrect / result.valCount,
    onnx: onnxAcc.correct / onnxAcc.count,
    result,
    onnxAcc,
  };
}

describe('trained export', () => {
  it('an MNIST model classifies the validation split within 0.5 points of the engine', async () => {
    const spec = toTaskSpec(
      TRACKS.mnist,
      {
        hidden: [
          { units: 64, activation: 'gelu', residual: false },
          { units: 64, activation: 'leaky_relu', residual: true },
        ],
        learningRateQ16: 4096,
        momentumQ16: 49152,
        weightDecayQ24: 256,
        batch: 64,
      },
      { steps: 150, seed: 3 },
    );
    const { engine, onnx, onnxAcc } = await exportedVsEngine(spec);
    expect(onnxAcc.count).toBe(2000);
    expect(engine).toBeGreaterThan(0.8);
    expect(Math.abs(onnx - engine)).toBeLessThanOrEqual(0.005);
  });

  it('a hard-tanh/relu model on the fast track matches too', async () => {
    const spec = toTaskSpec(
      TRACKS.blobs,
      {
        hidden: [
          { units: 32, activation: 'hardtanh', residual: false },
          { units: 32, activation: 'relu', residual: true },
        ],
        learningRateQ16: 2048,
        momentumQ16: 49152,
        weightDecayQ24: 0,
        batch: 32,
      },
      { steps: 6, seed: 1 },
    );
    expect(architectureOf(spec).hidden).toHaveLength(2);
    const { engine, onnx } = await exportedVsEngine(spec);
    expect(Math.abs(onnx - engine)).toBeLessThanOrEqual(0.005 + 1 / 256);
  });
});
