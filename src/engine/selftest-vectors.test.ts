import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { taskIdOf } from '../protocol/spec.ts';
import { SELFTEST_VECTORS } from './selftest-vectors.ts';
import { trainCpu } from './train-cpu.ts';
import { wasmKernelsAvailable } from './wasm/engine.ts';

const KERNELS = wasmKernelsAvailable() ? (['ts', 'wasm'] as const) : (['ts'] as const);

describe('pinned self-test vectors', () => {
  it.each(KERNELS.flatMap((k) => SELFTEST_VECTORS.map((v) => [v.name, k, v] as const)))(
    'CPU reference reproduces %s (%s kernels)',
    async (_, cpuKernels, vector) => {
      const dataset = await loadDataset(vector.spec.dataset.name, vector.spec.dataset.sha256);
      expect(taskIdOf(vector.spec)).toBe(vector.expected.taskId);
      const r = await trainCpu(vector.spec, dataset, { cpuKernels });
      expect({
        taskId: r.taskId,
        valCorrect: r.valCorrect,
        weightsHash: r.weightsHash,
        traceRoot: r.traceRoot,
        digest: r.digest,
      }).toEqual(vector.expected);
    },
  );
});
