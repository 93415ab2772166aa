/**
 * WGSL sources of the engine, assembled per adapter.
 *
 * The .wgsl files in src/engine/ops are the source of truth; kernels.generated.ts holds them as
 * strings so the same import works under Vite, vitest and tsx (see gen-kernels.ts). Kernels call
 * helper libraries (fixed.wgsl, rng.wgsl) that are prepended here: WGSL has no imports.
 */
import type { AnyOpDef } from '../ops/index.ts';
import * as wgsl from './kernels.generated.ts';

export { wgsl };

/** The matmul kernel with the int8 dot product that fits the adapter. */
export function matmulCode(packed: boolean): string {
  return (packed ? wgsl.dot4Packed : wgsl.dot4Plain) + wgsl.matmul;
}

/** Kernels and the helper libraries each one needs, in order (the op list's `libs` say the same). */
const KERNELS = {
  maxabs: [wgsl.fixed, wgsl.maxabs],
  quantize: [wgsl.fixed, wgsl.rng, wgsl.quantize],
  gather: [wgsl.gather],
  forward: [wgsl.fixed, wgsl.activation, wgsl.forward],
  softmaxXent: [wgsl.fixed, wgsl.softmaxXent],
  backward: [wgsl.fixed, wgsl.activation, wgsl.backward],
  sgd: [wgsl.fixed, wgsl.sgd],
  step: [wgsl.step],
} as const;

export type KernelName = keyof typeof KERNELS;

export { ACTIVATION_CODE } from '../ops/index.ts';

export function kernelCode(name: KernelName): string {
  return KERNELS[name].join('\n');
}

const LIBS: Record<string, string> = {
  fixed: wgsl.fixed,
  rng: wgsl.rng,
  activation: wgsl.activation,
  'pool-div': wgsl.poolDiv,
  'col2im-gather': wgsl.col2imGather,
  'conv-gemm': wgsl.convGemm,
  'conv-patch': wgsl.convPatch,
};

/** `softmax-xent` → `softmaxXent`, the generated constant of ops/softmax-xent.wgsl. */
const constantName = (file: string) => file.replace(/[-_](\w)/g, (_, c: string) => c.toUpperCase());

/** The WGSL of an op-list entry: its helper libraries, then ops/<name>.wgsl. */
export function opCode(op: AnyOpDef, packed: boolean): string {
  const source = (wgsl as Record<string, string>)[constantName(op.name)];
  if (source === undefined)
    throw new Error(`no kernel ops/${op.name}.wgsl (regenerate kernels.generated.ts)`);
  const libs = op.libs.map((lib) => {
    if (lib === 'dot4') return packed ? wgsl.dot4Packed : wgsl.dot4Plain;
    const code = LIBS[lib];
    if (code === undefined) throw new Error(`op ${op.name}: unknown WGSL library '${lib}'`);
    return code;
  });
  return [...libs, source].join('\n');
}
