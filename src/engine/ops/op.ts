/**
 * The shape of one entry of the op list (./index.ts): what both backends need to run an op.
 *
 * An op is a WGSL kernel (ops/<name>.wgsl) and its CPU twin (ops/<name>.ts) with the same semantics
 * on typed arrays. The kernel's @binding(0) is always a uniform (`uniform(params)`); bindings 1, 2, …
 * are the op's `bindings` in order (an i8 binding with layout 'both' takes two: by_row, then by_col).
 */

/** Element type of a buffer. u8 and i8 are packed four to a u32 word on the GPU. */
export type BufferType = 'i32' | 'u32' | 'i8' | 'u8';

/**
 * An i8 tensor [rows][cols] is row-major on the CPU. On the GPU it lives in the two "k-packed"
 * layouts matmul.wgsl reads (four int8 to a word, lines zero-padded to whole words):
 * rows = `rows` lines of ⌈cols/4⌉ words, cols = `cols` lines of ⌈rows/4⌉ words.
 */
export type I8Layout = 'rows' | 'cols';

/** The typed array a binding of each type is on the CPU. */
export interface CpuArrays {
  i32: Int32Array;
  u32: Uint32Array;
  i8: Int8Array;
  u8: Uint8Array;
}

export interface BindingDef<P> {
  /** Name in the plan's bind map and in the twin's buffer object. */
  slot: string;
  type: BufferType;
  /** 'write' and 'read_write' bindings are the op's outputs. */
  access: 'read' | 'write' | 'read_write';
  /** i8 only: the layout(s) bound; 'both' writes the two layouts at consecutive bindings. */
  layout?: I8Layout | 'both' | ((params: P) => I8Layout);
}

/** Parameters of an op invocation: plain values, fixed when the plan is compiled. */
export type OpParams = Record<string, number | string | boolean | null>;

export interface OpDef<P extends OpParams = OpParams, B = Record<string, CpuArrays[BufferType]>> {
  /** File stem: ops/<name>.ts holds the twin, ops/<name>.wgsl the kernel. */
  name: string;
  /** Helper libraries prepended to the kernel (WGSL has no imports), in order: e.g. ['fixed', 'rng']. */
  libs: readonly string[];
  bindings: readonly BindingDef<P>[];
  /**
   * The shape rule: params → the shape each binding needs (element counts; i8: [rows, cols]). Plans
   * check their buffers against it, and the parity tests allocate random inputs from it. Outputs
   * are the write bindings' shapes.
   */
  shapes(params: P): Record<string, number[]>;
  /** The values of the kernel's uniform struct, in field order (u32 each). */
  uniform(params: P): number[];
  /** The kernel's override constants. */
  constants?(params: P): Record<string, number>;
  /** Workgroups [x, y] of one dispatch. */
  grid(params: P): [number, number];
  /** The CPU twin: exactly the kernel's result on typed arrays. */
  twin(params: P, buffers: B): void;
  /** For the parity tests: random valid params (sizes small) drawn with `draw(n)` ∈ [0, n). */
  sample(draw: (n: number) => number): P;
  /**
   * For the parity tests: inputs that random bits would make invalid (indices into other buffers);
   * every other binding is filled with random values of its type.
   */
  sampleInputs?(params: P, draw: (n: number) => number): Record<string, ArrayLike<number>>;
}

export const NONE = 0xffffffff;
const MAX_GROUPS = 65535;

/** Elementwise grid: `count` threads in workgroups of `perGroup`, 2-D past the per-dimension limit. */
export function grid1d(count: number, perGroup = 256): [number, number] {
  const groups = Math.max(1, Math.ceil(count / perGroup));
  if (groups <= MAX_GROUPS) return [groups, 1];
  return [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS)];
}

/** Words of the two k-packed layouts of an i8 tensor [rows][cols]. */
export function packedWords(rows: number, cols: number): number {
  return rows * Math.ceil(cols / 4) + cols * Math.ceil(rows / 4);
}

/** Length a `maxes` buffer needs for these slots (NONE ignored). */
export function slotsLength(...slots: number[]): number {
  return Math.max(1, ...slots.filter((s) => s !== NONE).map((s) => s + 1));
}
