/**
 * WGSL sources of the engine, assembled per adapter.
 *
 * The .wgsl files in src/engine/ops are the source of truth; kernels.generated.ts holds them as
 * strings so the same import works under Vite, vitest and tsx (see gen-kernels.ts).
 */
import * as wgsl from './kernels.generated.ts';

export { wgsl };

/** The matmul kernel with the int8 dot product that fits the adapter. */
export function matmulCode(packed: boolean): string {
  return (packed ? wgsl.dot4Packed : wgsl.dot4Plain) + wgsl.matmul;
}
