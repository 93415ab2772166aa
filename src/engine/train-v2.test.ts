/**
 * Spec v2 on the CPU reference: a small CNN on blobs (1×8×8) learns, is deterministic, and resumes
 * from a mid-run state bit for bit (the referee's path); random v2 specs compile and train.
 */
import { describe, expect, it } from 'vitest';
import { DATASETS } from '../data/catalog.ts';
import { loadDataset } from '../data/node.ts';
import { TaskSpecV2Schema } from '../protocol/spec.ts';
import { modelPlan } from './plan.ts';
import { randomSpecV2 } from './random-spec.ts';
import { CpuTrainer, runCpuInterval, trainCpu, trainCpuRun } from './train-cpu.ts';

const blobs = await loadDataset('blobs');

const cnn = TaskSpecV2Schema.parse({
  v: 2,
  dataset: { name: 'blobs', sha256: DATASETS.blobs.sha256 },
  split: { seed: 3, validation: 128 },
  model: {
    input: { channels: 1, height: 8, width: 8 },
    classes: 4,
    layers: [
      { op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'relu' },
      { op: 'conv', channels: 4, kernel: 3, stride: 1, activation: 'gelu', residual: true },
      { op: 'maxpool' },
      { op: 'conv', channels: 8, kernel: 3, stride: 2, activation: 'leaky_relu' },
      { op: 'flatten' },
      { op: 'dense', units: 16, activation: 'relu' },
    ],
  },
  training: {
    optimizer: 'sgd',
    batch: 16,
    steps: 60,
    seed: 9,
    learningRateQ16: 4915,
    momentumQ16: 58982,
    weightDecayQ24: 0,
  },
  checkpointEvery: 20,
});

describe('CPU reference, spec v2', () => {
  it('lays out conv W as [C_in·k·k][C_out] in canonical order, classifier last', () => {
    const { layers } = modelPlan(cnn);
    expect(layers.map((l) => [l.kind, l.K, l.N])).toEqual([
      ['conv', 9, 4],
      ['conv', 36, 4],
      ['conv', 36, 8],
      ['dense', 8 * 2 * 2, 16],
      ['dense', 16, 4],
    ]);
  });

  it('learns: the loss falls and validation beats chance', () => {
    const trainer = new CpuTrainer(cnn, blobs);
    const losses: number[] = [];
    while (trainer.step < cnn.training.steps) losses.push(trainer.runStep().lossQ16);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-10))).toBeLessThan(0.7 * mean(losses.slice(0, 10)));
    const { valCorrect, valCount } = trainer.validate();
    expect(valCorrect / valCount).toBeGreaterThan(0.5); // 4 classes: chance is 0.25
  });

  it('is deterministic and resumes from a checkpoint state bit for bit', async () => {
    const full = await trainCpuRun(cnn, blobs);
    expect((await trainCpu(cnn, blobs)).digest).toBe(full.result.digest);
    const states: { step: number; state: Awaited<ReturnType<typeof trainCpuRun>>['state'] }[] = [];
    await trainCpuRun(cnn, blobs, { onCheckpoint: (state) => states.push({ step: state.step, state }) });
    const from = states[0].state;
    const { state, checkpoints } = await runCpuInterval(cnn, blobs, from, cnn.training.steps);
    expect(state).toEqual(full.state);
    expect(checkpoints).toEqual(full.result.checkpoints.filter((c) => c.step > from.step));
  });

  it('trains random small v2 specs', async () => {
    for (let seed = 0; seed < 8; seed++) {
      const spec = randomSpecV2(seed, { small: true });
      const result = await trainCpu(spec, blobs);
      expect(result.valCount).toBe(spec.split.validation);
      expect(result.checkpoints.at(-1)?.step).toBe(spec.training.steps);
    }
  });
});
