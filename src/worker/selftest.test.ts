import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuSession } from '../gpu/device.ts';
import { createNodeGpuSession } from '../gpu/node.ts';
import { runSelfTest } from './selftest.ts';

describe('conformance self-test', () => {
  it('passes on the CPU reference', async () => {
    const report = await runSelfTest('cpu');
    expect(report.passed).toBe(true);
    expect(report.checks.length).toBeGreaterThan(0);
  });

  describe('on WebGPU in Node', () => {
    let session: GpuSession;
    beforeAll(async () => {
      session = await createNodeGpuSession();
    });
    afterAll(() => session.destroy());

    it('passes, with every GPU path bit-identical to the CPU twin', async () => {
      const report = await runSelfTest('webgpu', async () => session);
      expect(report.error).toBeUndefined();
      expect(report.adapter).toBeDefined();
      expect(report.checks.filter((c) => c.name.includes('on GPU')).length).toBeGreaterThan(0);
      expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    });
  });

  it('reports (not throws) when no device can be had', async () => {
    const report = await runSelfTest('webgpu', async () => {
      throw new Error('no adapter here');
    });
    expect(report.passed).toBe(false);
    expect(report.error).toBe('no adapter here');
  });
});
