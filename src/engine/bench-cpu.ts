/**
 * CPU reference throughput on one core, the WASM kernels beside their TypeScript twins:
 * `npx tsx src/engine/bench-cpu.ts [spec.json] [--steps N] [--repeats R] [--kernels wasm,ts]`
 * (v1 or v2). Trains the same copy of the spec (cut to N steps) with each kernel set, times the
 * training steps alone by this process's CPU time (the figure that stays honest on a busy machine)
 * and by wall clock, and checks that every kernel set ends on the same state hash.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/node.ts';
import { parseAnyTaskSpec } from '../protocol/spec.ts';
import { CpuTrainer, type KernelChoice, stateHashOf } from './train-cpu.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string' },
    repeats: { type: 'string', default: '2' },
    kernels: { type: 'string', default: 'wasm,ts' },
  },
});
const specPath = positionals[0] ?? new URL('../../specs/reference-mlp.json', import.meta.url);
const full = parseAnyTaskSpec(JSON.parse(readFileSync(specPath, 'utf8')));
const steps = values.steps ? Number(values.steps) : full.training.steps;
if (!Number.isInteger(steps) || steps < 1 || steps > full.training.steps) {
  throw new Error(`--steps must be an integer in 1..${full.training.steps}`);
}
const spec = { ...full, training: { ...full.training, steps } };
const repeats = Number(values.repeats);
const kernelSets = values.kernels.split(',') as KernelChoice[];
const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
const samples = steps * spec.training.batch;

const best = new Map<KernelChoice, number>();
const hashes = new Map<KernelChoice, string>();
for (let r = 0; r < repeats; r++) {
  for (const kernels of kernelSets) {
    const trainer = new CpuTrainer(spec, dataset, undefined, { kernels });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (trainer.step < steps) trainer.runStep();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const perCpuSecond = Math.round(samples / cpuSeconds);
    best.set(kernels, Math.max(best.get(kernels) ?? 0, perCpuSecond));
    hashes.set(kernels, stateHashOf(trainer));
    console.log(
      JSON.stringify({
        run: r + 1,
        kernels: trainer.kernels,
        steps,
        batch: spec.training.batch,
        trainCpuSeconds: +cpuSeconds.toFixed(3),
        samplesPerSecondCpu: perCpuSecond,
        samplesPerSecondWall: Math.round(samples / wall),
        kernelCalls: trainer.kernelCalls,
        stateHash: hashes.get(kernels),
      }),
    );
  }
}
const distinct = new Set(hashes.values());
const summary: Record<string, unknown> = {
  spec: String(specPath),
  steps,
  bestSamplesPerCpuSecond: Object.fromEntries(best),
  sameStateHash: distinct.size === 1,
};
if (best.has('wasm') && best.has('ts'))
  summary.wasmOverTs = +(best.get('wasm')! / best.get('ts')!).toFixed(2);
console.log(JSON.stringify(summary));
if (distinct.size !== 1) process.exitCode = 1;
