/**
 * Whole training runs, TypeScript twins against the WASM kernels: random v1 and v2 specs
 * (../random-spec.ts) give the same state hash after every step, the same step totals and the same
 * validation, on the CPU reference's two kernel sets.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../data/node.ts';
import { type AnyTaskSpec, parseAnyTaskSpec } from '../../protocol/spec.ts';
import { randomSpec, randomSpecV2 } from '../random-spec.ts';
import { REFERENCE_DIGEST } from '../selftest-vectors.ts';
import { CpuTrainer, stateHashOf, trainCpu } from '../train-cpu.ts';
import { wasmKernelsAvailable } from './engine.ts';

async function parity(spec: AnyTaskSpec, maxSteps = Number.POSITIVE_INFINITY) {
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  const ts = new CpuTrainer(spec, dataset, undefined, { kernels: 'ts' });
  const wasm = new CpuTrainer(spec, dataset, undefined, { kernels: 'wasm' });
  expect([ts.kernels, wasm.kernels]).toEqual(['ts', 'wasm']);
  const steps = Math.min(spec.training.steps, maxSteps);
  for (let s = 0; s < steps; s++) {
    const a = ts.runStep();
    const b = wasm.runStep();
    expect(b, `step ${s + 1}`).toEqual(a);
    expect(stateHashOf(wasm), `state after step ${s + 1}`).toBe(stateHashOf(ts));
  }
  expect(wasm.validate()).toEqual(ts.validate());
  expect(wasm.computeGradients()).toEqual(ts.computeGradients());
  expect(Array.from(wasm.gradients)).toEqual(Array.from(ts.gradients));
  // every hot op ran as WASM: none fell back to its TS twin
  expect(wasm.kernelCalls.ts).toBe(0);
  expect(wasm.kernelCalls.wasm).toBeGreaterThan(0);
}

describe.runIf(wasmKernelsAvailable())('CPU training: TS twins = WASM kernels', () => {
  it.each(Array.from({ length: 12 }, (_, i) => i + 1))('random small v1 spec %i', async (seed) => {
    await parity(randomSpec(seed, { small: true }));
  });
  it.each(Array.from({ length: 16 }, (_, i) => i + 1))('random small v2 spec %i', async (seed) => {
    await parity(randomSpecV2(seed, { small: true }));
  });
  it.each([101, 102])('random MNIST v1 spec %i (first 6 steps)', async (seed) => {
    await parity(randomSpec(seed), 6);
  });
  it.each([201, 202, 203])('random MNIST v2 spec %i (first 3 steps)', async (seed) => {
    await parity(randomSpecV2(seed), 3);
  });
});

describe.runIf(wasmKernelsAvailable())('the reference MLP on the WASM kernels', () => {
  it('reproduces the pinned reference digest', async () => {
    const spec = parseAnyTaskSpec(
      JSON.parse(readFileSync(new URL('../../../specs/reference-mlp.json', import.meta.url), 'utf8')),
    );
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const result = await trainCpu(spec, dataset, { cpuKernels: 'wasm' });
    expect(result.digest).toBe(REFERENCE_DIGEST);
  });
});
