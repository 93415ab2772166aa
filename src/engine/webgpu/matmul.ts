/**
 * Int8 matmul on the GPU (src/engine/ops/matmul.wgsl): the kernel the trainer uses for x·W, xᵀ·e and
 * e·Wᵀ, plus `runMatmulI8`, a one-shot wrapper for self-tests and benchmarks.
 */
import type { GpuSession } from '../../gpu/device.ts';
import { bindGroup, packInt8, readBack, storageBuffer, uniformBuffer } from './buffers.ts';
import { contextFromSession, type GpuContext } from './context.ts';
import { matmulCode } from './kernels.ts';

/** Outputs per workgroup side in matmul.wgsl. */
const TILE = 32;

/**
 * Shape and operand strides, in int8 elements: A(i, kk) = a[i·aRow + kk·aK], B(kk, j) = b[kk·bK + j·bCol].
 * C is always row-major m×n.
 */
export interface MatmulShape {
  m: number;
  k: number;
  n: number;
  aRow: number;
  aK: number;
  bK: number;
  bCol: number;
}

/** Row-major A[m×k] · B[k×n]. */
export function plainShape(m: number, k: number, n: number): MatmulShape {
  return { m, k, n, aRow: k, aK: 1, bK: n, bCol: 1 };
}

export function matmulPipeline(ctx: GpuContext, packed = ctx.packedDot): Promise<GPUComputePipeline> {
  if (packed && !ctx.packedDot) throw new Error('dot4I8Packed is not available on this adapter');
  return ctx.pipeline(matmulCode(packed));
}

export function matmulParams(device: GPUDevice, s: MatmulShape): GPUBuffer {
  return uniformBuffer(device, [s.m, s.n, s.k, s.aRow, s.aK, s.bK, s.bCol, 0], 'matmul params');
}

/** Records one matmul dispatch; `a`, `b` hold packed int8, `c` receives i32. */
export function encodeMatmul(
  pass: GPUComputePassEncoder,
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  shape: MatmulShape,
  params: GPUBuffer,
  a: GPUBuffer,
  b: GPUBuffer,
  c: GPUBuffer,
): void {
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(device, pipeline, [params, a, b, c]));
  pass.dispatchWorkgroups(Math.ceil(shape.n / TILE), Math.ceil(shape.m / TILE));
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
  const { device } = ctx;
  const shape = plainShape(m, k, n);
  const pipeline = await matmulPipeline(ctx, options.packed ?? ctx.packedDot);
  const buffers = [
    matmulParams(device, shape),
    storageBuffer(device, a.length, packInt8(a)),
    storageBuffer(device, b.length, packInt8(b)),
    storageBuffer(device, m * n * 4),
  ];
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  encodeMatmul(pass, device, pipeline, shape, buffers[0], buffers[1], buffers[2], buffers[3]);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = new Int32Array(await readBack(device, buffers[3], m * n * 4));
  for (const buffer of buffers) buffer.destroy();
  return out;
}
