import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { type Activation, parseTaskSpec, type TaskSpec } from '../protocol/spec.ts';
import { floatBatchLoss } from './float-reference.ts';
import { randomSpec } from './random-spec.ts';
import { cosine } from './similarity.ts';
import { CpuTrainer, runCpuInterval, trainCpu, trainCpuRun } from './train-cpu.ts';
import type { TrainState } from './types.ts';

const blobs = await loadDataset('blobs');

function blobSpec(
  overrides: { hidden?: TaskSpec['model']['hidden']; steps?: number; seed?: number; batch?: number } = {},
) {
  return parseTaskSpec({
    v: 1,
    dataset: { name: 'blobs', sha256: blobs.sha256 },
    split: { seed: 3, validation: 128 },
    model: { inputs: 64, classes: 4, hidden: overrides.hidden ?? [{ units: 16, activation: 'relu' }] },
    training: {
      optimizer: 'sgd',
      batch: overrides.batch ?? 32,
      steps: overrides.steps ?? 30,
      seed: overrides.seed ?? 11,
      learningRateQ16: 3277,
      momentumQ16: 58982,
      weightDecayQ24: 1678,
    },
    checkpointEvery: 7,
  });
}

describe('integer backward against float64 finite differences', () => {
  const cases: { name: string; hidden: TaskSpec['model']['hidden'] }[] = (
    ['relu', 'leaky_relu', 'hardtanh', 'gelu'] as Activation[]
  ).map((activation) => ({ name: activation, hidden: [{ units: 12, activation, residual: false }] }));
  cases.push({
    name: 'two layers with a residual',
    hidden: [
      { units: 12, activation: 'gelu', residual: false },
      { units: 12, activation: 'relu', residual: true },
    ],
  });

  it.each(cases)('gradient agrees (cosine > 0.99, norm within 10%): $name', ({ hidden }) => {
    const spec = blobSpec({ hidden, batch: 64 });
    const trainer = new CpuTrainer(spec, blobs);
    for (let i = 0; i < 5; i++) trainer.runStep(); // off the symmetric start
    trainer.computeGradients();
    // One draw of the stochastic rounding: unbiased but noisy, hence a cosine bound, not equality.
    const grad = Float64Array.from(trainer.gradients, (g) => g / 2 ** 24);
    const batch = trainer.plan.batchIndices(trainer.step);
    const params = Float64Array.from(trainer.params, (p) => p / 2 ** 24);
    const fd = new Float64Array(params.length);
    const h = 1e-4;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      params[i] = p + h;
      const up = floatBatchLoss(spec, blobs, params, batch);
      params[i] = p - h;
      const down = floatBatchLoss(spec, blobs, params, batch);
      params[i] = p;
      fd[i] = (up - down) / (2 * h);
    }
    // Measured: cosine 0.998–0.9994 and norm ratio within 1% on these cases.
    expect(cosine(grad, fd)).toBeGreaterThan(0.99);
    const norm = (v: Float64Array) => Math.hypot(...v);
    expect(norm(grad) / norm(fd)).toBeGreaterThan(0.9);
    expect(norm(grad) / norm(fd)).toBeLessThan(1.1);
  });
});

describe('CPU trainer', () => {
  it('the loss falls', async () => {
    const losses: number[] = [];
    await trainCpu(
      blobSpec({ steps: 40, hidden: [{ units: 16, activation: 'gelu', residual: false }] }),
      blobs,
      {
        onProgress: (p) => losses.push(p.loss),
      },
    );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(losses).toHaveLength(40);
    expect(mean(losses.slice(-8))).toBeLessThan(0.5 * mean(losses.slice(0, 8)));
  });

  it('is deterministic: same spec, same digest; another seed, another digest', async () => {
    const spec = blobSpec();
    const a = await trainCpu(spec, blobs);
    const b = await trainCpu(structuredClone(spec), blobs);
    expect(b).toEqual(a);
    const c = await trainCpu(blobSpec({ seed: 12 }), blobs);
    expect(c.digest).not.toBe(a.digest);
    expect(c.weightsHash).not.toBe(a.weightsHash);
    expect(a.checkpoints.map((cp) => cp.step)).toEqual([7, 14, 21, 28, 30]);
  });

  it('resumes from a checkpoint state and recomputes an interval bit for bit (the referee)', async () => {
    const spec = blobSpec({ hidden: [{ units: 16, activation: 'leaky_relu', residual: false }] });
    const states: TrainState[] = [];
    const full = await trainCpuRun(spec, blobs, { onCheckpoint: (s) => states.push(s) });
    const at14 = states.find((s) => s.step === 14)!;
    const interval = await runCpuInterval(spec, blobs, at14, 21);
    expect(interval.checkpoints).toEqual(full.result.checkpoints.filter((c) => c.step === 21));
    const resumed = await trainCpuRun(spec, blobs, { resumeFrom: at14 });
    expect(resumed.result.weightsHash).toBe(full.result.weightsHash);
    expect(resumed.result.valLoss).toBe(full.result.valLoss);
    expect(resumed.result.checkpoints).toEqual(full.result.checkpoints.filter((c) => c.step > 14));
    expect(resumed.state.params).toEqual(full.state.params);
  });

  it('stops with the abort reason when cancelled', async () => {
    const controller = new AbortController();
    const run = trainCpu(blobSpec({ steps: 200 }), blobs, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 3) controller.abort(new Error('stop here'));
      },
    });
    await expect(run).rejects.toThrow('stop here');
  });

  it('rejects a dataset that is not the one the spec names', async () => {
    const spec = { ...blobSpec(), dataset: { name: 'blobs', sha256: `0x${'ab'.repeat(32)}` } };
    await expect(trainCpu(spec, blobs)).rejects.toThrow(/sha256 is 0x[0-9a-f]{64}, spec says 0xabab/);
  });

  it('trains every small random spec', async () => {
    for (let seed = 0; seed < 6; seed++) {
      const spec = randomSpec(seed, { small: true });
      const result = await trainCpu(spec, blobs);
      expect(result.valCount).toBe(128);
      expect(result.checkpoints.at(-1)!.step).toBe(spec.training.steps);
    }
  });
});
