/**
 * The WASM SIMD kernel engine of the CPU reference (docs/KERNELS.md, "The WASM CPU path"): one
 * instance of the compiled kernels (./kernels-wasm.ts, built from ./assembly/kernels.ts) with its own
 * linear memory. A trainer sizes the memory once, places its buffers in it (`alloc`: typed-array
 * views, so the TypeScript twins read them as before) and never grows it afterwards, so the views stay
 * valid. Each op call takes scratch above the buffers; an operand outside the memory is copied in
 * (and an output back out) around the call. Instantiation is synchronous.
 */
import { KERNELS_WASM_BASE64 } from './kernels-wasm.ts';

export type KernelChoice = 'ts' | 'wasm';

/** The kernels' exports (pointers are byte offsets into the engine's memory). */
export interface KernelExports {
  heapBase(): number;
  maxAbs(x: number, n: number): number;
  roundHalfEven(x: number, q: number, n: number, s: number): void;
  roundStochastic(x: number, q: number, n: number, s: number, key: number, mask: number): void;
  forwardEpilogue(
    acc: number,
    rows: number,
    n: number,
    shift: number,
    bias: number,
    z: number,
    h: number,
    hIn: number,
    act: number,
    residual: number,
  ): number;
  backwardEpilogue(
    acc: number,
    n: number,
    shift: number,
    ghRes: number,
    residual: number,
    z: number,
    act: number,
    ghOut: number,
    gz: number,
  ): number;
  sgdRescaled(
    w: number,
    v: number,
    acc: number,
    n: number,
    shift: number,
    lr: number,
    mom: number,
    wd: number,
  ): number;
  sgdPlain(w: number, v: number, g: number, n: number, lr: number, mom: number, wd: number): void;
  addColumnSums(x: number, rows: number, n: number, out: number): void;
  maxpool(x: number, y: number, arg: number, ...dims: number[]): number;
  maxpoolBackward(dy: number, arg: number, z: number, gh: number, gz: number, ...dims: number[]): number;
  widenRows(src: number, rows: number, cols: number, ld: number, dst: number): void;
  transposeWiden(src: number, rows: number, cols: number, dRows: number, ld: number, dst: number): void;
  packPairs(
    src: number,
    runOff: number,
    runs: number,
    L: number,
    lStride: number,
    colStride: number,
    ncols: number,
    dst: number,
  ): void;
  rowBases(
    table: number,
    B: number,
    OH: number,
    OW: number,
    bStride: number,
    yStride: number,
    xStride: number,
  ): void;
  padImage(
    x: number,
    B: number,
    C: number,
    H: number,
    W: number,
    sb: number,
    sc: number,
    sy: number,
    sx: number,
    pad: number,
    shift: number,
    dst: number,
  ): void;
  dilateImage(
    e8: number,
    B: number,
    OH: number,
    OW: number,
    N: number,
    s: number,
    U: number,
    V: number,
    off: number,
    dst: number,
  ): void;
  convGemm(
    img: number,
    rowBase: number,
    M: number,
    runOff: number,
    runs: number,
    L: number,
    bp: number,
    N: number,
    out: number,
    ldo: number,
  ): void;
  convGemmT(
    img: number,
    rowBase: number,
    Mp: number,
    runOff: number,
    runs: number,
    L: number,
    eT: number,
    N: number,
    acc: number,
    kRunMul: number,
    kLMul: number,
  ): void;
}

type Typed = Int8Array | Uint8Array | Int32Array | Uint32Array | Int16Array;
type TypedCtor<T extends Typed> = {
  new (buffer: ArrayBuffer, offset: number, length: number): T;
  BYTES_PER_ELEMENT: number;
};

const PAGE = 65536;
const ALIGN = 16;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel module, or null where WebAssembly SIMD is unavailable (then the TS twins run). */
export function kernelModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  try {
    if (typeof WebAssembly === 'object') {
      const bytes = decodeBase64(KERNELS_WASM_BASE64);
      if (WebAssembly.validate(bytes)) compiled = new WebAssembly.Module(bytes);
    }
  } catch {
    compiled = null;
  }
  return compiled;
}

export function wasmKernelsAvailable(): boolean {
  return kernelModule() !== null;
}

/**
 * The kernels a CPU trainer uses when not told: `CAMBRIAN_CPU_KERNELS` (ts | wasm) where there is an
 * environment, else WASM where WebAssembly SIMD is available, else the TypeScript twins.
 */
export function defaultKernels(): KernelChoice {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const choice = env?.CAMBRIAN_CPU_KERNELS;
  if (choice === 'ts') return 'ts';
  if (choice !== undefined && choice !== '' && choice !== 'wasm')
    throw new Error(`CAMBRIAN_CPU_KERNELS must be ts or wasm, is '${choice}'`);
  return wasmKernelsAvailable() ? 'wasm' : 'ts';
}

/** Resolves a requested choice: 'wasm' where SIMD is missing falls back to 'ts'. */
export function resolveKernels(choice: KernelChoice | undefined): KernelChoice {
  const c = choice ?? defaultKernels();
  return c === 'wasm' && !wasmKernelsAvailable() ? 'ts' : c;
}

export class WasmEngine {
  readonly memory: WebAssembly.Memory;
  readonly k: KernelExports;
  /** End of the persistent buffers (scratch starts here). */
  private heap: number;
  /** Once a persistent view exists the memory never grows (growing would detach it). */
  private pinned = false;
  private top = 0;
  private staged: { array: Typed; ptr: number }[] = [];

  /** `bytes`: the room to reserve up front for buffers and scratch (0: grow on demand until pinned). */
  constructor(bytes = 0) {
    const module = kernelModule();
    if (!module) throw new Error('WebAssembly SIMD is not available');
    const probe = new WebAssembly.Memory({ initial: 1 });
    const base = align(
      (
        new WebAssembly.Instance(module, { env: { memory: probe } }).exports as unknown as KernelExports
      ).heapBase(),
    );
    this.memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((base + bytes) / PAGE)) });
    this.k = new WebAssembly.Instance(module, { env: { memory: this.memory } })
      .exports as unknown as KernelExports;
    this.heap = base;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * A persistent zeroed array inside the memory; a plain array when the reserved room is spent (the
   * kernels then copy it in and out, which is slower but the same bits).
   */
  alloc<T extends Typed>(ctor: TypedCtor<T>, length: number): T {
    const bytes = align(length * ctor.BYTES_PER_ELEMENT);
    if (this.heap + bytes > this.byteLength) {
      if (this.pinned) return new ctor(new ArrayBuffer(length * ctor.BYTES_PER_ELEMENT), 0, length);
      this.grow(this.heap + bytes);
    }
    const view = new ctor(this.memory.buffer, this.heap, length);
    this.heap += bytes;
    this.pinned = true;
    return view;
  }

  private grow(bytes: number): void {
    const pages = Math.ceil(bytes / PAGE) - this.byteLength / PAGE;
    if (pages > 0) this.memory.grow(pages);
  }

  /** Whether `array` lives in this engine's memory. */
  resident(array: Typed): boolean {
    return array.buffer === this.memory.buffer;
  }

  /**
   * Starts an op call needing `scratch` bytes besides copies of the non-resident `arrays`. False when
   * that does not fit and the memory may not grow: the caller runs the TypeScript twin instead.
   */
  begin(scratch: number, arrays: readonly Typed[]): boolean {
    let need = scratch + 1024;
    for (const a of arrays) if (!this.resident(a)) need += align(a.byteLength) + ALIGN;
    const start = align(this.heap);
    if (start + need > this.byteLength) {
      if (this.pinned) return false;
      this.grow(start + need);
    }
    this.top = start;
    this.staged = [];
    return true;
  }

  /** `bytes` of scratch for this call (16-byte aligned; not zeroed). */
  scratch(bytes: number): number {
    const p = this.top;
    this.top = align(this.top + bytes);
    return p;
  }

  /** An i32 scratch table with these values. */
  table(values: readonly number[]): number {
    const p = this.scratch(values.length * 4);
    new Int32Array(this.memory.buffer, p, values.length).set(values);
    return p;
  }

  /** The pointer of an operand (copied in when not resident). */
  in(array: Typed): number {
    if (this.resident(array)) return array.byteOffset;
    const p = this.scratch(array.byteLength);
    new Uint8Array(this.memory.buffer, p, array.byteLength).set(
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength),
    );
    return p;
  }

  /** The pointer of an output (copied in, and back out by `end`, when not resident). */
  out(array: Typed): number {
    const p = this.in(array);
    if (!this.resident(array)) this.staged.push({ array, ptr: p });
    return p;
  }

  /** Ends the call: copies staged outputs back. */
  end(): void {
    for (const { array, ptr } of this.staged)
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(
        new Uint8Array(this.memory.buffer, ptr, array.byteLength),
      );
    this.staged = [];
  }

  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }
}
