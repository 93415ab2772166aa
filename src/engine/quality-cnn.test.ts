/**
 * The reference CNN (specs/reference-cnn.json), cheaply: its full figure (≥ 98.0% and within 1.0
 * point of float32) takes minutes of CPU, so CI checks that the first steps of the integer trainer
 * follow the float32 trainer of the same architecture, init and data order (per-window mean losses
 * within 5%, and both learning), and that the spec is a point of the mnist-cnn search space. The
 * full figure: `npx tsx src/engine/quality-cnn.ts` (docs/SEARCH.md, "Reference CNN").
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { cnnArchitectureOf, cnnWithinBudget } from '../nas/cnn-space.ts';
import { TRACKS } from '../nas/tracks.ts';
import { parseAnyTaskSpec, type TaskSpecV2 } from '../protocol/spec.ts';
import { trainFloatCnn } from './float-reference.ts';
import { CpuTrainer } from './train-cpu.ts';

const reference = parseAnyTaskSpec(
  JSON.parse(readFileSync(new URL('../../specs/reference-cnn.json', import.meta.url), 'utf8')),
) as TaskSpecV2;
const STEPS = 24;
const WINDOW = 8;

describe('reference CNN', () => {
  it('is an architecture of the mnist-cnn space, within its budget', () => {
    expect(reference.v).toBe(2);
    expect(cnnWithinBudget(TRACKS['mnist-cnn'], cnnArchitectureOf(reference))).toBe(true);
  });

  it(`integer and float32 losses agree over the first ${STEPS} steps`, async () => {
    const spec: TaskSpecV2 = { ...reference, training: { ...reference.training, steps: STEPS } };
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const trainer = new CpuTrainer(spec, dataset);
    const intLosses: number[] = [];
    while (trainer.step < STEPS) intLosses.push(trainer.runStep().lossQ16 / 2 ** 16 / spec.training.batch);
    const floatLosses = trainFloatCnn(spec, dataset, { validate: false }).losses;
    const mean = (xs: number[], from: number) =>
      xs.slice(from, from + WINDOW).reduce((a, b) => a + b) / WINDOW;
    for (let from = 0; from < STEPS; from += WINDOW) {
      const [i, f] = [mean(intLosses, from), mean(floatLosses, from)];
      console.log(
        `steps ${from}–${from + WINDOW - 1}: mean loss integer ${i.toFixed(4)}, float32 ${f.toFixed(4)}`,
      );
      expect(Math.abs(i - f) / f, `steps ${from}–${from + WINDOW - 1}`).toBeLessThan(0.05);
    }
    const last = STEPS - WINDOW;
    expect(mean(intLosses, last)).toBeLessThan(0.5 * mean(intLosses, 0));
    expect(mean(floatLosses, last)).toBeLessThan(0.5 * mean(floatLosses, 0));
  });
});
