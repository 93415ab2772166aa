/**
 * Task result v1 and its digest (DESIGN §2). The digest is what workers sign and what the
 * Settlement contract recomputes from the metrics it records, so its encoding is fixed here once.
 */
import { bytesToHex, type Hex } from 'viem';
import { z } from 'zod';
import { abiWords } from './abi.ts';
import { keccakBytes } from './keccak.ts';
import { traceRoot } from './trace.ts';

const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/, 'expected 0x-prefixed lowercase 32-byte hex');
const u32 = z.number().int().min(0).max(0xffff_ffff);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const DECIMAL = /^-?(0|[1-9][0-9]*)$/;
/** int64 travels as a decimal string: JSON numbers lose precision past 2^53. */
const int64String = z
  .string()
  .regex(DECIMAL, 'expected a decimal integer string')
  // zod runs refinements even after a failed regex, so guard BigInt() against non-decimal input.
  .refine(
    (s) => !DECIMAL.test(s) || (BigInt(s) >= INT64_MIN && BigInt(s) <= INT64_MAX),
    'out of int64 range',
  );

export const CheckpointSchema = z.strictObject({
  step: u32,
  /** keccak256(weights ‖ momentum), each i32 little-endian in canonical parameter order. */
  stateHash: hex32,
});

export const TaskResultSchema = z.strictObject({
  taskId: hex32,
  valCorrect: u32,
  valCount: u32,
  /** Sum over the validation set of per-example cross-entropy, fixed point × 2^16 (int64). */
  valLoss: int64String,
  weightsHash: hex32,
  traceRoot: hex32,
  /** The trace leaves, in step order; the referee bisects over them in a dispute. */
  checkpoints: z.array(CheckpointSchema).min(1),
  digest: hex32,
});

export type Checkpoint = z.infer<typeof CheckpointSchema>;
export type TaskResult = z.infer<typeof TaskResultSchema>;

export interface ResultMetrics {
  taskId: Hex;
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
  weightsHash: Hex;
  traceRoot: Hex;
}

export const DIGEST_PARAMS = [
  { type: 'bytes32', name: 'taskId' },
  { type: 'uint32', name: 'valCorrect' },
  { type: 'uint32', name: 'valCount' },
  { type: 'int64', name: 'valLoss' },
  { type: 'bytes32', name: 'weightsHash' },
  { type: 'bytes32', name: 'traceRoot' },
] as const;

/** keccak256(abi.encode(bytes32, uint32, uint32, int64, bytes32, bytes32)). */
export function resultDigest(m: ResultMetrics): Hex {
  const encoded = abiWords(
    { bytes32: m.taskId },
    { uint: m.valCorrect, bits: 32 },
    { uint: m.valCount, bits: 32 },
    { int: m.valLoss, bits: 64 },
    { bytes32: m.weightsHash },
    { bytes32: m.traceRoot },
  );
  return bytesToHex(keccakBytes(encoded));
}

export function metricsOf(result: TaskResult): ResultMetrics {
  return {
    taskId: result.taskId as Hex,
    valCorrect: result.valCorrect,
    valCount: result.valCount,
    valLoss: BigInt(result.valLoss),
    weightsHash: result.weightsHash as Hex,
    traceRoot: result.traceRoot as Hex,
  };
}

/** Parses untrusted input and checks that the trace root and digest match the fields they cover. */
export function parseTaskResult(input: unknown): TaskResult {
  return checkTaskResult(TaskResultSchema.parse(input));
}

/** For a result that already passed `TaskResultSchema`: checks its trace root and digest. */
export function checkTaskResult(result: TaskResult): TaskResult {
  if (traceRoot(result.checkpoints) !== result.traceRoot) {
    throw new Error('result traceRoot does not match its checkpoints');
  }
  if (resultDigest(metricsOf(result)) !== result.digest)
    throw new Error('result digest does not match its fields');
  return result;
}

/** The metrics a trainer measures; the trace root and digest are derived from them here, once. */
export interface TrainedMetrics {
  taskId: Hex;
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
  weightsHash: Hex;
  checkpoints: Checkpoint[];
}

/** Assembles a result from what a trainer measured (every backend builds its result through this). */
export function buildTaskResult(m: TrainedMetrics): TaskResult {
  const root = traceRoot(m.checkpoints);
  return {
    taskId: m.taskId,
    valCorrect: m.valCorrect,
    valCount: m.valCount,
    valLoss: m.valLoss.toString(),
    weightsHash: m.weightsHash,
    traceRoot: root,
    checkpoints: m.checkpoints,
    digest: resultDigest({ ...m, traceRoot: root }),
  };
}
