/**
 * Spec v2 (conv) on WebGPU against the CPU reference: random small conv specs (blobs as 1×8×8) give
 * the same result digest, checkpoints, per-step losses and final state on Dawn (SwiftShader without
 * a GPU) as the CPU twins.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateBlobs } from '../../data/blobs.ts';
import { decodeDataset } from '../../data/format.ts';
import { randomSpecV2 } from '../random-spec.ts';
import { trainCpuRun } from '../train-cpu.ts';
import type { Dataset, TrainProgress } from '../types.ts';
import { dawnContext } from './test-harness.ts';
import { trainWebGPURun } from './train.ts';

const ctx = dawnContext();
let blobs: Dataset;
beforeAll(() => {
  blobs = decodeDataset('blobs', generateBlobs());
});

describe('trainWebGPU on Dawn = CPU reference, spec v2', () => {
  it.each([1, 2, 3, 5, 8, 13])(
    'random small conv spec %i: same digest, checkpoints, losses and state',
    async (seed) => {
      const spec = randomSpecV2(seed, { small: true });
      const cpuLosses: number[] = [];
      const cpu = await trainCpuRun(spec, blobs, {
        onProgress: (p: TrainProgress) => cpuLosses.push(p.batchLossQ16),
      });
      const gpuLosses: number[] = [];
      const gpu = await trainWebGPURun(ctx(), spec, blobs, {
        stepsPerSubmit: 1 + (seed % 4),
        // both kernel variants: workgroup-memory tiles (GPUs) and barrier-free (SwiftShader)
        tiled: seed % 2 === 1,
        onProgress: (p: TrainProgress) => gpuLosses.push(p.batchLossQ16),
      });
      expect(gpuLosses).toEqual(cpuLosses);
      expect(gpu.state).toEqual(cpu.state);
      expect(gpu.result).toEqual(cpu.result);
    },
  );
});
