/**
 * The CPU backend of a program: every named buffer is a typed array (parameters and momentum are
 * views into the canonical vectors), and running a sequence calls each op's twin in order. With a
 * WASM engine (./wasm/engine.ts) the buffers live in its memory and the ops of ./wasm/ops.ts run as
 * WASM SIMD kernels (the same bits); every other op, and any call the engine has no room for, runs
 * its TypeScript twin on the same arrays.
 */
import type { Program, StateRange } from './compile.ts';
import type { BufferType, CpuArrays } from './ops/index.ts';
import { elementsOf, type Invocation } from './program.ts';
import type { Dataset } from './types.ts';
import type { WasmEngine } from './wasm/engine.ts';
import { WASM_OPS } from './wasm/ops.ts';

type CpuArray = CpuArrays[BufferType];

/**
 * Bytes a WASM engine needs for this program: its buffers (not the dataset's), `extra` (e.g. the
 * parameter vectors) and the largest scratch of any call.
 */
export function wasmBytesFor(program: Program, extra: number): number {
  let bytes = extra;
  for (const decl of program.buffers.values()) {
    const from = decl.init?.from;
    if (from === 'pixels' || from === 'labels' || from === 'validation') continue;
    if (from === 'params' || from === 'momentum') continue;
    bytes += Math.ceil((elementsOf(decl.shape) * ARRAYS[decl.type].BYTES_PER_ELEMENT) / 16) * 16;
  }
  let scratch = 0;
  const { prologue, step, valWeights, valChunk, valTail } = program;
  for (const sequence of [prologue, step, valWeights, valChunk, valTail])
    for (const inv of sequence) {
      const op = WASM_OPS[inv.op.name];
      if (op) scratch = Math.max(scratch, op.scratch(inv.params));
    }
  return bytes + scratch + 4096;
}

const ARRAYS = { i32: Int32Array, u32: Uint32Array, i8: Int8Array, u8: Uint8Array } as const;

export class CpuProgram {
  readonly arrays = new Map<string, CpuArray>();
  /** Calls of ops with a WASM twin that ran as WASM, and that ran their TS twin (no room). */
  wasmCalls = 0;
  tsCalls = 0;

  constructor(
    readonly program: Program,
    dataset: Dataset,
    validation: Uint32Array,
    readonly params: Int32Array,
    readonly momentum: Int32Array,
    readonly engine: WasmEngine | null = null,
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
      else if (engine)
        array = engine.alloc(ARRAYS[decl.type] as unknown as Int32ArrayConstructor, elementsOf(decl.shape));
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
    const wasm = this.engine ? WASM_OPS[inv.op.name] : undefined;
    if (wasm) {
      if (wasm.run(this.engine!, params, buffers)) {
        this.wasmCalls++;
        return;
      }
      this.tsCalls++;
    }
    inv.op.twin(params, buffers);
  }
}
