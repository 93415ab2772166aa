/**
 * WGSL sources of the engine, assembled per adapter.
 *
 * The .wgsl files in src/engine/ops are the source of truth; kernels.generated.ts holds them as
 * strings so the same import works under Vite, vitest and tsx (see gen-kernels.ts). Kernels call
 * helper libraries (fixed.wgsl, rng.wgsl) that are prepended here: WGSL has no imports.
 */
import * as wgsl from './kernels.generated.ts';

export { wgsl };

/** The matmul kernel with the int8 dot product that fits the adapter. */
export function matmulCode(packed: boolean): string {
  return (packed ? wgsl.dot4Packed : wgsl.dot4Plain) + wgsl.matmul;
}

/** Kernels and the helper libraries each one needs, in order. */
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

/** The `act` codes of activation.wgsl. */
export const ACTIVATION_CODE = { relu: 1, leaky_relu: 2, hardtanh: 3, gelu: 4 } as const;

export function kernelCode(name: KernelName): string {
  return KERNELS[name].join('\n');
}
