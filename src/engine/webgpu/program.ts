/**
 * The WebGPU side of a program (../program.ts): named buffers become GPU buffers (an i8 tensor
 * becomes its two k-packed layouts) and each invocation a pipeline, a bind group and a grid, fixed
 * at setup so a whole step records into one compute pass with no per-op work on the CPU.
 */

import type { Program } from '../compile.ts';
import type { I8Layout } from '../ops/index.ts';
import { type BufferDecl, elementsOf, type Invocation } from '../program.ts';
import type { Dataset } from '../types.ts';
import { bindGroup, storageBuffer, uniformBuffer } from './buffers.ts';
import type { GpuContext } from './context.ts';
import { opCode } from './kernels.ts';
import { packLines } from './matmul.ts';

/** A named buffer on the GPU: one buffer, or for i8 tensors one per k-packed layout. */
export interface GpuTensor {
  decl: BufferDecl;
  main?: GPUBuffer;
  rows?: GPUBuffer;
  cols?: GPUBuffer;
}

/** One recorded dispatch. */
export interface RecordedOp {
  label: string;
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  grid: [number, number];
}

/** u8 values four to a u32 word, zero-padded. */
export function packBytes(bytes: ArrayLike<number>): Uint32Array {
  const words = new Uint32Array(Math.max(1, Math.ceil(bytes.length / 4)));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

/**
 * Allocates a named buffer, optionally filled: i32/u32/u8 from their values, i8 from the row-major
 * tensor (written in both layouts).
 */
export function createGpuTensor(device: GPUDevice, decl: BufferDecl, data?: ArrayLike<number>): GpuTensor {
  const n = elementsOf(decl.shape);
  switch (decl.type) {
    case 'i32':
      return { decl, main: storageBuffer(device, n * 4, data && Int32Array.from(data), decl.name) };
    case 'u32':
      return { decl, main: storageBuffer(device, n * 4, data && Uint32Array.from(data), decl.name) };
    case 'u8': {
      const words = data && packBytes(data);
      return { decl, main: storageBuffer(device, Math.ceil(n / 4) * 4, words, decl.name) };
    }
    case 'i8': {
      const [rows, cols] = decl.shape;
      const values = data ? Int8Array.from(data) : null;
      const rowWords = values ? packLines(values, rows, cols, cols, 1) : undefined;
      const colWords = values ? packLines(values, cols, rows, 1, cols) : undefined;
      return {
        decl,
        rows: storageBuffer(device, rows * Math.ceil(cols / 4) * 4, rowWords, `${decl.name} by rows`),
        cols: storageBuffer(device, cols * Math.ceil(rows / 4) * 4, colWords, `${decl.name} by cols`),
      };
    }
  }
}

export function destroyGpuTensor(t: GpuTensor): void {
  t.main?.destroy();
  t.rows?.destroy();
  t.cols?.destroy();
}

/** The GPU buffers an invocation binds, in WGSL binding order from 1. */
function boundBuffers(inv: Invocation, tensors: Map<string, GpuTensor>): GPUBuffer[] {
  const out: GPUBuffer[] = [];
  for (const binding of inv.op.bindings) {
    const t = tensors.get(inv.bind[binding.slot]);
    if (!t) throw new Error(`${inv.label}: no GPU buffer '${inv.bind[binding.slot]}'`);
    if (binding.type !== 'i8') {
      out.push(t.main!);
      continue;
    }
    const layout =
      typeof binding.layout === 'function' ? binding.layout(inv.params) : (binding.layout ?? 'both');
    if (layout === 'both') out.push(t.rows!, t.cols!);
    else out.push(t[layout as I8Layout]!);
  }
  return out;
}

/**
 * Pipeline, uniform and bind group of one invocation. The uniform buffer is pushed to `owned` (the
 * caller destroys it with the program).
 */
export async function recordInvocation(
  ctx: GpuContext,
  inv: Invocation,
  tensors: Map<string, GpuTensor>,
  owned: GPUBuffer[],
  packed = ctx.packedDot,
): Promise<RecordedOp> {
  const { op, params } = inv;
  const pipeline = await ctx.pipeline(opCode(op, packed), 'main', op.constants?.(params));
  const uniform = uniformBuffer(ctx.device, op.uniform(params), inv.label);
  owned.push(uniform);
  const group = bindGroup(ctx.device, pipeline, [uniform, ...boundBuffers(inv, tensors)]);
  return { label: inv.label, pipeline, group, grid: op.grid(params) };
}

export function encodeOps(pass: GPUComputePassEncoder, ops: readonly RecordedOp[]): void {
  for (const { pipeline, group, grid } of ops) {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(grid[0], grid[1]);
  }
}

/** What a program's `init` fields refer to. */
export interface ProgramInputs {
  dataset: Dataset;
  validation: Uint32Array;
  params: Int32Array;
  momentum: Int32Array;
}

/** Every buffer of a program on the GPU, filled from its `init`. */
export function createProgramTensors(
  device: GPUDevice,
  program: Program,
  inputs: ProgramInputs,
): Map<string, GpuTensor> {
  const tensors = new Map<string, GpuTensor>();
  for (const decl of program.buffers.values()) {
    const init = decl.init;
    let data: ArrayLike<number> | undefined;
    if (init?.from === 'params' || init?.from === 'momentum') {
      const vector = init.from === 'params' ? inputs.params : inputs.momentum;
      data = vector.subarray(init.offset, init.offset + elementsOf(decl.shape));
    } else if (init?.from === 'pixels') data = inputs.dataset.pixels;
    else if (init?.from === 'labels') data = inputs.dataset.labels;
    else if (init?.from === 'validation') data = inputs.validation;
    tensors.set(decl.name, createGpuTensor(device, decl, data));
  }
  return tensors;
}
