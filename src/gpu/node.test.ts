import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuSession } from './device.ts';
import { createNodeGpuSession } from './node.ts';

describe('WebGPU in Node (Dawn; SwiftShader when there is no GPU)', () => {
  const losses: string[] = [];
  let session: GpuSession;
  beforeAll(async () => {
    session = await createNodeGpuSession({ onDeviceLost: (reason) => losses.push(reason) });
  });
  afterAll(() => session.destroy());

  it('reports the adapter, its limits and WGSL language features', async () => {
    const report = await session.report();
    expect(report.vendor.length + report.description.length).toBeGreaterThan(0);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(report.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(Array.isArray(report.wgslLanguageFeatures)).toBe(true);
  });

  it('compiles pipelines asynchronously, once per source', async () => {
    const code =
      '@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n@compute @workgroup_size(1) fn main() { out[0] = 7u; }';
    const [p1, p2] = await Promise.all([session.pipeline(code), session.pipeline(code)]);
    expect(p1).toBe(p2);
  });

  it('names the WGSL error when a kernel does not compile', async () => {
    await expect(
      session.pipeline('@compute @workgroup_size(1) fn main() { let x: i32 = 1.5; }'),
    ).rejects.toThrow(/WGSL compilation failed/);
  });

  it('acquires a new working device after the device is lost', async () => {
    const first = await session.device();
    first.destroy();
    await first.lost;
    expect(losses.length).toBe(1);
    const second = await session.device();
    expect(second).not.toBe(first);
    const buffer = second.createBuffer({
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    second.queue.writeBuffer(buffer, 0, new Uint32Array([1, 2, 3, 4]));
    await buffer.mapAsync(GPUMapMode.READ);
    expect([...new Uint32Array(buffer.getMappedRange())]).toEqual([1, 2, 3, 4]);
    buffer.unmap();
  });
});
