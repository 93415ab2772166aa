/**
 * The conformance self-test every worker runs before it takes work (DESIGN §1): the integer kernels on
 * this device must reproduce the CPU reference bit for bit. A device that fails never votes.
 * Browser-safe: runs in the engine Worker and in Node (`cambrian selftest`).
 */
import { keccak256 } from 'viem';
import { generateBlobs } from '../data/blobs.ts';
import { DATASETS } from '../data/catalog.ts';
import { decodeDataset } from '../data/format.ts';
import { rand, rngKey } from '../engine/ops/rng.ts';
import { SELFTEST_VECTORS } from '../engine/selftest-vectors.ts';
import { train } from '../engine/train.ts';
import type { Backend } from '../engine/types.ts';
import { type KernelChoice, resolveKernels } from '../engine/wasm/engine.ts';
import { runMatmulI8 } from '../engine/webgpu/matmul.ts';
import type { GpuReport, GpuSession } from '../gpu/device.ts';

export interface SelfTestCheck {
  name: string;
  passed: boolean;
  detail: string;
  ms: number;
}

export interface SelfTestReport {
  backend: 'webgpu' | 'cpu';
  passed: boolean;
  adapter?: GpuReport;
  /** On the CPU: the kernels that ran, 'wasm' (WebAssembly SIMD) or 'ts' (where SIMD is missing). */
  cpuKernels?: KernelChoice;
  checks: SelfTestCheck[];
  ms: number;
  /** Why the self-test could not run at all (no adapter, device lost, ...). */
  error?: string;
}

/** Odd sizes on purpose: k not a multiple of 4 exercises the packed path's tail, m and n the tile edges. */
const MATMUL_SHAPE = { m: 37, k: 203, n: 45 } as const;
/** keccak256 of the little-endian i32 product below; pins the CPU reference itself across JS engines. */
const MATMUL_PRODUCT_HASH = '0xf0499e81b80d135767a7b1ecefe691d871b71e14e62ede19bc777aaf218910cd';

function int8Operand(seed: number, length: number): Int8Array {
  const key = rngKey(seed, 0, 0x53_54);
  const out = new Int8Array(length);
  for (let i = 0; i < length; i++) out[i] = (rand(key, i) % 255) - 127;
  return out;
}

/** The CPU twin: an exact i32 product of int8 operands. */
function matmulCpu(a: Int8Array, b: Int8Array, m: number, k: number, n: number): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let kk = 0; kk < k; kk++) {
      const av = a[i * k + kk];
      if (av === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[kk * n + j];
    }
  }
  return c;
}

function productHash(c: Int32Array): string {
  return keccak256(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
}

async function timed(
  name: string,
  body: () => Promise<{ passed: boolean; detail: string }>,
): Promise<SelfTestCheck> {
  const start = performance.now();
  try {
    const { passed, detail } = await body();
    return { name, passed, detail, ms: performance.now() - start };
  } catch (err) {
    return {
      name,
      passed: false,
      detail: err instanceof Error ? err.message : String(err),
      ms: performance.now() - start,
    };
  }
}

function firstMismatch(got: Int32Array, want: Int32Array): string {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return `element ${i}: got ${got[i]}, want ${want[i]}`;
  }
  return 'identical';
}

/**
 * Runs every check on `backend`. For webgpu, `session` supplies the device; failures to get one are
 * reported in `error` rather than thrown, so the UI can explain them and offer the CPU path.
 */
export async function runSelfTest(
  backend: 'webgpu' | 'cpu',
  session?: () => Promise<GpuSession>,
): Promise<SelfTestReport> {
  const start = performance.now();
  const { m, k, n } = MATMUL_SHAPE;
  const a = int8Operand(1, m * k);
  const b = int8Operand(2, k * n);
  const reference = matmulCpu(a, b, m, k, n);
  const checks: SelfTestCheck[] = [];

  checks.push(
    await timed('int8 matmul reference', async () => {
      const hash = productHash(reference);
      return {
        passed: hash === MATMUL_PRODUCT_HASH,
        detail: `${m}×${k}×${n} product hash ${hash.slice(0, 18)}…`,
      };
    }),
  );

  let adapter: GpuReport | undefined;
  if (backend === 'webgpu') {
    let gpu: GpuSession;
    try {
      gpu = await session!();
      adapter = await gpu.report();
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      return { backend, passed: false, checks, ms: performance.now() - start, error };
    }
    const paths = (await gpu.hasPackedDot()) ? [false, true] : [false];
    for (const packed of paths) {
      const label = packed ? 'dot4I8Packed' : 'plain i32';
      checks.push(
        await timed(`int8 matmul on GPU (${label})`, async () => {
          const got = await runMatmulI8(gpu, a, b, m, k, n, { packed });
          const detail = firstMismatch(got, reference);
          return { passed: detail === 'identical', detail: `${detail} to the CPU twin` };
        }),
      );
    }
  }
  const device = backend === 'webgpu' ? await (await session!()).device() : undefined;
  const cpuKernels = backend === 'cpu' ? resolveKernels(undefined) : undefined;
  checks.push(...(await vectorChecks(backend, device, cpuKernels)));
  const passed = checks.every((c) => c.passed);
  return { backend, passed, adapter, cpuKernels, checks, ms: performance.now() - start };
}

/** Trains each pinned vector on `backend` and compares every field the digest covers. */
async function vectorChecks(
  backend: Backend,
  device?: GPUDevice,
  cpuKernels?: KernelChoice,
): Promise<SelfTestCheck[]> {
  const dataset = decodeDataset('blobs', generateBlobs(), DATASETS.blobs.sha256);
  const checks: SelfTestCheck[] = [];
  for (const vector of SELFTEST_VECTORS) {
    checks.push(
      await timed(`training vector ${vector.name}`, async () => {
        const result = await train(vector.spec, dataset, { backend, device, cpuKernels });
        const want = vector.expected;
        const wrong = (['taskId', 'valCorrect', 'weightsHash', 'traceRoot', 'digest'] as const).filter(
          (field) => result[field] !== want[field],
        );
        if (wrong.length > 0)
          return { passed: false, detail: `${wrong.join(', ')} differ from the pinned values` };
        return { passed: true, detail: `digest ${result.digest.slice(0, 18)}… as pinned` };
      }),
    );
  }
  return checks;
}
