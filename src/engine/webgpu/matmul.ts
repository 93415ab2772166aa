/**
 * Int8 matmul on the GPU (src/engine/ops/matmul.wgsl): the kernel the trainer uses for x·W, xᵀ·e and
 * e·Wᵀ, plus `runMatmulI8`, a one-shot wrapper for self-tests and benchmarks.
 */
import type { GpuSession } from '../../gpu/device.ts';
import { bindGroup, readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { contextFromSession, type GpuContext } from './context.ts';
import { matmulCode } from './kernels.ts';

/** Outputs per workgroup side in matmul.wgsl (8 threads × 4). */
const TILE = 32;

/** C[m×n] = A·B with A as m k-packed lines and B as n k-packed lines of kw = ⌈k/4⌉ words. */
export interface MatmulShape {
  m: number;
  n: number;
  k: number;
}

export const wordsPerLine = (k: number) => Math.ceil(k / 4);

/**
 * Packs `lines` lines of `length` int8 values into k-packed words (zero-padded to whole words):
 * value i of line l is src[l·lineStride + i·step].
 */
export function packLines(src: Int8Array, lines: number, length: number, lineStride: number, step: number) {
  const kw = wordsPerLine(length);
  const bytes = new Int8Array(Math.max(1, lines * kw) * 4);
  for (let l = 0; l < lines; l++)
    for (let i = 0; i < length; i++) bytes[l * kw * 4 + i] = src[l * lineStride + i * step];
  return new Uint32Array(bytes.buffer);
}

export function matmulPipeline(ctx: GpuContext, packed = ctx.packedDot): Promise<GPUComputePipeline> {
  if (packed && !ctx.packedDot) throw new Error('dot4I8Packed is not available on this adapter');
  return ctx.pipeline(matmulCode(packed));
}

export function matmulParams(device: GPUDevice, s: MatmulShape): GPUBuffer {
  return uniformBuffer(device, [s.m, s.n, wordsPerLine(s.k), 0], 'matmul params');
}

export function matmulGrid(s: MatmulShape): [number, number] {
  return [Math.ceil(s.n / TILE), Math.ceil(s.m / TILE)];
}

/**
 * C[m×n] = A[m×k] · B[k×n] (row-major int8 in, exact i32 out) on the GPU.
 * `packed` picks dot4I8Packed (default: when the adapter has it) or the plain i32 path.
 */
export async function runMatmulI8(
  session: GpuSession,
  a: Int8Array,
  b: Int8Array,
  m: number,
  k: number,
  n: number,
  options: { packed?: boolean } = {},
): Promise<Int32Array> {
  if (a.length !== m * k || b.length !== k * n)
    throw new Error(`matmul operand sizes do not match ${m}×${k}×${n}`);
  const ctx = await contextFromSession(session);
  return runMatmulPacked(ctx, packLines(a, m, k, k, 1), packLines(b, n, k, 1, n), { m, n, k }, options);
}

/** The same on operands already k-packed (A by rows, B by columns). */
export async function runMatmulPacked(
  ctx: GpuContext,
  a: Uint32Array,
  b: Uint32Array,
  shape: MatmulShape,
  options: { packed?: boolean } = {},
): Promise<Int32Array> {
  const { device } = ctx;
  const pipeline = await matmulPipeline(ctx, options.packed ?? ctx.packedDot);
  const buffers = [
    matmulParams(device, shape),
    storageBuffer(device, a.byteLength, a),
    storageBuffer(device, b.byteLength, b),
    storageBuffer(device, shape.m * shape.n * 4),
  ];
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(device, pipeline, buffers));
  pass.dispatchWorkgroups(...matmulGrid(shape));
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = new Int32Array(await readBack(device, buffers[3], shape.m * shape.n * 4));
  for (const buffer of buffers) buffer.destroy();
  return out;
}

/**
 * Throughput of the int8 kernel at n×n×n: operands stay on the GPU; after a warm-up dispatch, `reps`
 * dispatches go in one command buffer (reps chosen to take about `targetSeconds`, at most 50) and the
 * product is read back once. Returns GOPS counting a multiply-add as 2 operations.
 */
export async function timeMatmulI8(
  ctx: GpuContext,
  n: number,
  options: { packed?: boolean; targetSeconds?: number } = {},
): Promise<{ n: number; gops: number; reps: number; seconds: number }> {
  const { device } = ctx;
  const shape = { m: n, n, k: n };
  const words = new Uint32Array(n * wordsPerLine(n));
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const pipeline = await matmulPipeline(ctx, options.packed ?? ctx.packedDot);
  const buffers = [
    matmulParams(device, shape),
    storageBuffer(device, words.byteLength, words),
    storageBuffer(device, words.byteLength, words),
    storageBuffer(device, n * n * 4),
  ];
  const group = bindGroup(device, pipeline, buffers);
  const runReps = async (reps: number) => {
    const start = performance.now();
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(...matmulGrid(shape));
    pass.end();
    device.queue.submit([encoder.finish()]);
    await readBack(device, buffers[3], 4);
    return (performance.now() - start) / 1000;
  };
  const once = await runReps(1);
  const reps = Math.max(1, Math.min(50, Math.round((options.targetSeconds ?? 0.5) / once)));
  const seconds = (await runReps(reps)) / reps;
  for (const buffer of buffers) buffer.destroy();
  return { n, gops: (2 * n ** 3) / seconds / 1e9, reps, seconds };
}
