/**
 * The WebGPU trainer against the CPU reference: random small specs (blobs, tiny nets) must give the
 * same digest, weights hash, every checkpoint hash and every step's loss, on both int8 dot paths,
 * with any number of steps per command buffer, and when resuming from a mid-run state.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateBlobs } from '../../data/blobs.ts';
import { decodeDataset } from '../../data/format.ts';
import { randomSpec } from '../random-spec.ts';
import { train } from '../train.ts';
import { CpuTrainer, trainCpu, trainCpuRun } from '../train-cpu.ts';
import type { Dataset, TrainProgress } from '../types.ts';
import { dawnContext } from './test-harness.ts';
import { trainWebGPU, trainWebGPURun } from './train.ts';

const ctx = dawnContext();
let blobs: Dataset;
beforeAll(() => {
  blobs = decodeDataset('blobs', generateBlobs());
});

describe('trainWebGPU on Dawn = CPU reference', () => {
  it('random small specs: same digest, weights, checkpoints and losses (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        fc.integer({ min: 1, max: 9 }),
        async (seed, packed, stepsPerSubmit) => {
          const spec = randomSpec(seed, { small: true });
          const cpuLosses: number[] = [];
          const gpuLosses: number[] = [];
          const cpu = await trainCpuRun(spec, blobs, {
            onProgress: (p: TrainProgress) => cpuLosses.push(p.batchLossQ16),
          });
          const gpu = await trainWebGPURun(ctx(), spec, blobs, {
            packed: packed && ctx().packedDot,
            stepsPerSubmit,
            onProgress: (p: TrainProgress) => gpuLosses.push(p.batchLossQ16),
          });
          expect(gpuLosses).toEqual(cpuLosses);
          expect(gpu.result.checkpoints).toEqual(cpu.result.checkpoints);
          expect(gpu.result.weightsHash).toBe(cpu.result.weightsHash);
          expect(gpu.result).toEqual(cpu.result);
        },
      ),
      { numRuns: 6, seed: 0x5eed },
    );
  });

  it('resumes from a mid-run state like the referee does', async () => {
    const spec = randomSpec(42, { small: true });
    const cpu = new CpuTrainer(spec, blobs);
    const half = Math.floor(spec.training.steps / 2);
    for (let t = 0; t < half; t++) cpu.runStep();
    const from = cpu.state();
    const expected = await trainCpuRun(spec, blobs, { resumeFrom: from });
    const gpu = await trainWebGPURun(ctx(), spec, blobs, { resumeFrom: from });
    expect(gpu.result).toEqual(expected.result);
    expect(gpu.state).toEqual(expected.state);
  });

  it('trains through train({ backend: "webgpu" }) and on a caller-supplied device', async () => {
    const spec = randomSpec(3, { small: true });
    const expected = await trainCpu(spec, blobs);
    expect(await train(spec, blobs, { backend: 'webgpu' })).toEqual(expected);
    expect(await trainWebGPU(spec, blobs, { device: ctx().device })).toEqual(expected);
  });

  it('hands out the same checkpoint states as the CPU, and stops on abort', async () => {
    const spec = randomSpec(11, { small: true });
    const cpuStates: unknown[] = [];
    const gpuStates: unknown[] = [];
    await trainCpuRun(spec, blobs, { onCheckpoint: (state, hash) => cpuStates.push({ state, hash }) });
    await trainWebGPURun(ctx(), spec, blobs, {
      onCheckpoint: (state, hash) => gpuStates.push({ state, hash }),
    });
    expect(gpuStates.length).toBeGreaterThan(0);
    expect(gpuStates).toEqual(cpuStates);

    const controller = new AbortController();
    const run = trainWebGPURun(ctx(), spec, blobs, {
      stepsPerSubmit: 1,
      onProgress: (p) => {
        if (p.step === 2) controller.abort(new Error('stopped by the test'));
      },
      signal: controller.signal,
    });
    await expect(run).rejects.toThrow('stopped by the test');
  });

  it('reports its dispatches per step', async () => {
    const spec = randomSpec(7, { small: true });
    const { dispatchesPerStep } = await trainWebGPURun(ctx(), spec, blobs);
    const layers = spec.model.hidden.length + 1;
    expect(dispatchesPerStep).toBe(9 * layers);
  });
});
