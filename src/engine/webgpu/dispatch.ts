/** One-off dispatches for tests, self-tests and benchmarks (the trainer records its own passes). */
import { bindGroup, readBack, storageBuffer } from './buffers.ts';
import type { GpuContext } from './context.ts';

/** Runs one dispatch of `pipeline` with `buffers` bound at 0, 1, … and waits for it. */
export async function dispatchOnce(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  buffers: GPUBuffer[],
  workgroups: [number, number?, number?],
): Promise<void> {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(ctx.device, pipeline, buffers));
  pass.dispatchWorkgroups(...workgroups);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
  await ctx.device.queue.onSubmittedWorkDone();
}

export async function readI32(ctx: GpuContext, buffer: GPUBuffer, length: number): Promise<Int32Array> {
  return new Int32Array(await readBack(ctx.device, buffer, length * 4));
}

export function i32Buffer(ctx: GpuContext, values: ArrayLike<number>): GPUBuffer {
  return storageBuffer(ctx.device, values.length * 4, Int32Array.from(values));
}
