/**
 * Helpers for the kernel tests: a Dawn context per test file and an elementwise evaluator that runs
 * a WGSL expression of (a, b, c: i32) over input triples, with the helper libraries in scope.
 */
import { afterAll, beforeAll } from 'vitest';
import type { GpuSession } from '../../gpu/device.ts';
import { createNodeGpuSession } from '../../gpu/node.ts';
import { storageBuffer } from './buffers.ts';
import { contextFromSession, type GpuContext } from './context.ts';
import { dispatchOnce, i32Buffer, readI32 } from './dispatch.ts';
import { wgsl } from './kernels.ts';

/** A Dawn session and context, opened before the calling file's tests and destroyed after them. */
export function dawnContext(): () => GpuContext {
  let session: GpuSession | undefined;
  let ctx: GpuContext | undefined;
  beforeAll(async () => {
    session = await createNodeGpuSession();
    ctx = await contextFromSession(session);
  });
  afterAll(() => session?.destroy());
  return () => {
    if (!ctx) throw new Error('no Dawn context: it is opened in beforeAll');
    return ctx;
  };
}

export async function evaluate(ctx: GpuContext, expression: string, inputs: [number, number, number][]) {
  const code = `${wgsl.fixed}\n${wgsl.rng}\n${wgsl.activation}
@group(0) @binding(0) var<storage, read> x: array<i32>;
@group(0) @binding(1) var<storage, read_write> y: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= arrayLength(&y)) { return; }
  let a = x[3u * i];
  let b = x[3u * i + 1u];
  let c = x[3u * i + 2u];
  y[i] = ${expression};
}`;
  const pipeline = await ctx.pipeline(code);
  const x = i32Buffer(ctx, inputs.flat());
  const y = storageBuffer(ctx.device, inputs.length * 4);
  await dispatchOnce(ctx, pipeline, [x, y], [Math.ceil(inputs.length / 64)]);
  const out = await readI32(ctx, y, inputs.length);
  x.destroy();
  y.destroy();
  return Array.from(out);
}

/** The first index where two sequences differ, with both values, or null when equal. */
export function firstMismatch(gpu: ArrayLike<number>, cpu: ArrayLike<number>, inputs?: unknown[]) {
  if (gpu.length !== cpu.length) return { lengths: [gpu.length, cpu.length] };
  for (let i = 0; i < cpu.length; i++) {
    if (gpu[i] !== cpu[i]) return { index: i, input: inputs?.[i], gpu: gpu[i], cpu: cpu[i] };
  }
  return null;
}

/** Deterministic i32 test data: xorshift32 scaled by `scale` bits, with edge values mixed in. */
export function randomI32(length: number, seed: number, bits = 32, edges: number[] = []): Int32Array {
  const out = new Int32Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = bits >= 32 ? x | 0 : (x | 0) >> (32 - bits);
  }
  edges.forEach((v, i) => {
    if (i < length) out[(i * 7919) % length] = v;
  });
  return out;
}
