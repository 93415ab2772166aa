/**
 * A training step as data: op invocations over named buffers, which both backends execute
 * (program-cpu.ts calls the twins, webgpu/program.ts records the kernels). ./compile.ts builds one
 * from a spec.
 */
import type { AnyOpDef, BufferType, OpParams } from './ops/index.ts';

/** A named buffer: element type and capacity (i8: [rows, cols], the largest shape written to it). */
export interface BufferDecl {
  name: string;
  type: BufferType;
  shape: number[];
  /**
   * Where its initial contents come from: a parameter or momentum range of the canonical vector
   * (offset, length), the dataset's pixels or labels, the validation order, or zeros.
   */
  init?: { from: 'params' | 'momentum'; offset: number } | { from: 'pixels' | 'labels' | 'validation' };
}

/** A parameter (or momentum) buffer and where it sits in the canonical vector. */
export interface StateRange {
  buffer: string;
  offset: number;
  length: number;
}

export interface Program {
  buffers: Map<string, BufferDecl>;
  /** max |W| of the starting weights (from then on each step's sgd folds it in). */
  prologue: Invocation[];
  /** One training step: quantise W, forward, loss, backward with the updates, step boundary. */
  step: Invocation[];
  /** Validation: weights rounded half-even, then full chunks of `batch` rows, then the tail. */
  valWeights: Invocation[];
  valChunk: Invocation[];
  valTail: Invocation[];
  /** Full validation chunks (valChunk runs this many times). */
  valChunks: number;
  /** Slots validate() zeroes first: [from, from + count). */
  valSlots: { from: number; count: number };
  params: StateRange[];
  momentum: StateRange[];
  /** Steps whose batch indices and stats the order/stats buffers hold (state[1] counts within). */
  stepsPerUpload: number;
}

export interface CompileOptions {
  /** Steps per upload of batch indices (the WebGPU backend records this many per submit). */
  stepsPerUpload?: number;
  /**
   * Stage operands in workgroup memory (conv kernels, transposes): faster on GPUs, slower on
   * SwiftShader (a fiber switch per barrier). The same bits either way; default false.
   */
  tiled?: boolean;
}

export interface Invocation {
  op: AnyOpDef;
  /** For profiles and the dispatch list: e.g. 'x·W 1'. */
  label: string;
  params: OpParams;
  /** Binding slot → buffer name. */
  bind: Record<string, string>;
}

/** Elements of a buffer (i8: rows · cols). */
export function elementsOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Checks every invocation against its op's shape rule: each binding names a declared buffer of the
 * binding's type and at least the shape the op needs (i8 tensors: rows and cols each).
 */
export function checkInvocations(buffers: Map<string, BufferDecl>, sequences: Invocation[][]): void {
  for (const sequence of sequences) {
    for (const inv of sequence) {
      const shapes = inv.op.shapes(inv.params);
      for (const binding of inv.op.bindings) {
        const name = inv.bind[binding.slot];
        const where = `${inv.label} (${inv.op.name}.${binding.slot})`;
        if (name === undefined) throw new Error(`${where}: no buffer bound`);
        const decl = buffers.get(name);
        if (!decl) throw new Error(`${where}: unknown buffer '${name}'`);
        if (decl.type !== binding.type)
          throw new Error(`${where}: '${name}' is ${decl.type}, needs ${binding.type}`);
        const need = shapes[binding.slot];
        const fits =
          binding.type === 'i8'
            ? need[0] <= decl.shape[0] && need[1] <= decl.shape[1]
            : elementsOf(need) <= elementsOf(decl.shape);
        if (!fits) throw new Error(`${where}: '${name}' has shape [${decl.shape}], needs [${need}]`);
      }
    }
  }
}
