/**
 * The CPU backend of a program: every named buffer is a typed array (parameters and momentum are
 * views into the canonical vectors), and running a sequence calls each op's twin in order.
 */
import type { Program, StateRange } from './compile.ts';
import type { BufferType, CpuArrays } from './ops/index.ts';
import { elementsOf, type Invocation } from './program.ts';
import type { Dataset } from './types.ts';

type CpuArray = CpuArrays[BufferType];

const ARRAYS = { i32: Int32Array, u32: Uint32Array, i8: Int8Array, u8: Uint8Array } as const;

export class CpuProgram {
  readonly arrays = new Map<string, CpuArray>();

  constructor(
    readonly program: Program,
    dataset: Dataset,
    validation: Uint32Array,
    readonly params: Int32Array,
    readonly momentum: Int32Array,
  ) {
    const view = (vector: Int32Array, ranges: StateRange[], name: string) => {
      const range = ranges.find((r) => r.buffer === name)!;
      return vector.subarray(range.offset, range.offset + range.length);
    };
    for (const decl of program.buffers.values()) {
      const init = decl.init;
      let array: CpuArray;
      if (init?.from === 'params') array = view(params, program.params, decl.name);
      else if (init?.from === 'momentum') array = view(momentum, program.momentum, decl.name);
      else if (init?.from === 'pixels') array = dataset.pixels;
      else if (init?.from === 'labels') array = dataset.labels;
      else if (init?.from === 'validation') array = validation;
      else array = new ARRAYS[decl.type](elementsOf(decl.shape));
      this.arrays.set(decl.name, array);
    }
  }

  get(name: string): CpuArray {
    const array = this.arrays.get(name);
    if (!array) throw new Error(`no buffer '${name}'`);
    return array;
  }

  run(sequence: readonly Invocation[]): void {
    for (const inv of sequence) this.invoke(inv);
  }

  /** Runs one invocation; `params` and `overrides` (arrays by slot) replace the plan's for this call. */
  invoke(inv: Invocation, params = inv.params, overrides: Record<string, CpuArray> = {}): void {
    const buffers: Record<string, CpuArray> = {};
    for (const { slot } of inv.op.bindings) buffers[slot] = overrides[slot] ?? this.get(inv.bind[slot]);
    inv.op.twin(params, buffers);
  }
}
