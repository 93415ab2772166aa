/**
 * CPU reference throughput on one core: `npx tsx src/engine/bench-cpu.ts [spec.json] [repeats]` (v1 or v2).
 * Times the training steps alone (dataset load and validation reported apart), by wall clock and by
 * this process's CPU time; the CPU-time figure is the one that stays honest on a busy machine.
 */
import { readFileSync } from 'node:fs';
import { loadDataset } from '../data/node.ts';
import { parseAnyTaskSpec } from '../protocol/spec.ts';
import { CpuTrainer } from './train-cpu.ts';

const specPath = process.argv[2] ?? new URL('../../specs/reference-mlp.json', import.meta.url);
const repeats = Number(process.argv[3] ?? 3);
const spec = parseAnyTaskSpec(JSON.parse(readFileSync(specPath, 'utf8')));
const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
const samples = spec.training.steps * spec.training.batch;

for (let r = 0; r < repeats; r++) {
  const trainer = new CpuTrainer(spec, dataset);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (trainer.step < spec.training.steps) trainer.runStep();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const v0 = performance.now();
  const { valCorrect, valCount } = trainer.validate();
  const validation = (performance.now() - v0) / 1000;
  console.log(
    JSON.stringify({
      run: r + 1,
      steps: spec.training.steps,
      batch: spec.training.batch,
      trainWallSeconds: +wall.toFixed(3),
      trainCpuSeconds: +cpuSeconds.toFixed(3),
      samplesPerSecondWall: Math.round(samples / wall),
      samplesPerSecondCpu: Math.round(samples / cpuSeconds),
      validationSeconds: +validation.toFixed(3),
      valAccuracy: valCorrect / valCount,
    }),
  );
}
