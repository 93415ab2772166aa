/**
 * Pinned conformance vectors: small MLP (v1) and conv (v2) specs on the generated blobs dataset
 * (read as 1×8×8 images for conv) and the result fields the CPU reference produces for them
 * (regenerate with make-selftest-vectors.ts only on a deliberate contract change). A backend is conformant when it reproduces every `expected` exactly.
 */
import { type AnyTaskSpec, parseAnyTaskSpec } from '../protocol/spec.ts';
import raw from './selftest-vectors.json' with { type: 'json' };

export interface SelfTestVector {
  name: string;
  spec: AnyTaskSpec;
  expected: { taskId: string; valCorrect: number; weightsHash: string; traceRoot: string; digest: string };
}

export const SELFTEST_VECTORS: readonly SelfTestVector[] = raw.map((v) => ({
  ...v,
  spec: parseAnyTaskSpec(v.spec),
}));

/** The digest of specs/reference-mlp.json on the CPU reference (docs/SPEC.md); ~10 s of CPU to reproduce. */
export const REFERENCE_DIGEST = '0x160faed56869b25ac9ee57d0043721dbcffc57a1aae5103fa02ad5b64935d0f6';
