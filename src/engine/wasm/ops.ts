/**
 * The WASM twins of the CPU reference's hot ops (docs/KERNELS.md, "The WASM CPU path"): for each op
 * of ../ops/index.ts listed here, the same (params, buffers) → buffers as its TypeScript twin, bit
 * for bit, computed by the SIMD kernels of ./assembly/kernels.ts. Each entry says how much scratch a
 * call needs (so a trainer can size its engine's memory once) and runs the call; `run` returns false
 * when the engine has no room, and the caller then runs the TypeScript twin (same bits).
 *
 * The GEMMs take i16 operands ("pairs": two consecutive reduction indices in a 32-bit word, the
 * input of i32x4.dot_i16x8_s) laid out by the packing kernels:
 *   convGemm  out[m][n]  = Σ_run Σ_l img[rowBase[m] + runOff[run] + l] · W[run][l][n]
 *   convGemmT acc[k][n] += Σ_m   img[rowBase[m] + runOff[run] + l] · e[m][n],  k = run·kRunMul + l·kLMul
 * A conv's patch row is a set of contiguous runs in a zero-padded hwc image (one run per tap of C
 * channels, or for C = 1 one run per kernel row of k pixels), so neither conv builds a patch matrix;
 * a dense matmul is the one-run case.
 */
import type { Activation } from '../../protocol/spec.ts';
import type { BackwardParams } from '../ops/backward.ts';
import type { ConvForwardParams } from '../ops/conv-forward.ts';
import type { ConvInputGradParams } from '../ops/conv-input-grad.ts';
import type { ConvWeightGradParams } from '../ops/conv-weight-grad.ts';
import { type ForwardParams, operandShift } from '../ops/forward.ts';
import { INPUT_SHIFT } from '../ops/gather.ts';
import { type ConvGeometry, convPad, imageStrides, patchShape } from '../ops/image.ts';
import { ACTIVATION_CODE, type BufferType, type CpuArrays, NONE } from '../ops/index.ts';
import type { MatmulParams } from '../ops/matmul.ts';
import type { MaxabsParams } from '../ops/maxabs.ts';
import { checkPoolable, type MaxpoolParams, pooledShape } from '../ops/maxpool.ts';
import type { MaxpoolBackwardParams } from '../ops/maxpool-backward.ts';
import { type QuantizeParams, quantShift } from '../ops/quantize.ts';
import { rngKey } from '../ops/rng.ts';
import type { SgdParams } from '../ops/sgd.ts';
import type { WasmEngine } from './engine.ts';

type Arr = CpuArrays[BufferType];
// biome-ignore lint/suspicious/noExplicitAny: the entries' params and buffers are each op's own.
type AnyParams = any;

export interface WasmOp<P = AnyParams, B = AnyParams> {
  /** Scratch bytes a call needs (besides copies of operands outside the engine's memory). */
  scratch(p: P): number;
  /** Runs the call; false: no room (run the TypeScript twin). */
  run(e: WasmEngine, p: P, b: B): boolean;
}

const act = (a: Activation | null) => (a ? ACTIVATION_CODE[a] : 0);
const ceil8 = (n: number) => Math.ceil(n / 8) * 8;
const ceil4 = (n: number) => Math.ceil(n / 4) * 4;
const even = (n: number) => n + (n & 1);
const SLACK = 64;
/** Bytes of a packPairs result: runs · ⌈L/2⌉ pairs · ⌈ncols/8⌉·8 columns · 4. */
const packedBytes = (runs: number, L: number, ncols: number) => runs * Math.ceil(L / 2) * ceil8(ncols) * 4;
const values = (b: Record<string, Arr>) => Object.values(b);

function foldMax(maxes: Uint32Array, slot: number, m: number): void {
  if (slot !== NONE && m >>> 0 > maxes[slot]) maxes[slot] = m >>> 0;
}

// ---- dense matmuls (ops/matmul.ts)

function matmulScratch(p: MatmulParams): number {
  const { m, n, k } = p;
  if (p.a === 'rows' && p.b === 'cols')
    return m * even(k) * 2 + SLACK + m * 4 + 16 + packedBytes(1, k, n) + 64;
  if (p.a === 'cols' && p.b === 'cols')
    // x [k][m] (B = k rows of K = m), e [k][n]: g [m][n]
    return k * m * 2 + SLACK + even(k) * 4 + 16 + ceil4(n) * even(k) * 2 + 64;
  if (p.a === 'rows' && p.b === 'rows')
    return m * even(k) * 2 + SLACK + m * 4 + 16 + packedBytes(1, k, n) + 64;
  return 0;
}

const matmulOp: WasmOp<MatmulParams, { a: Int8Array; b: Int8Array; c: Int32Array }> = {
  scratch: matmulScratch,
  run(e, p, t) {
    const { m, n, k } = p;
    const ab = p.a === 'rows' ? 1 : 0;
    if (p.a === 'cols' && p.b === 'rows') return false;
    if (!e.begin(matmulScratch(p), [t.a, t.b, t.c])) return false;
    const K = e.k;
    const a = e.in(t.a);
    const b = e.in(t.b);
    const c = e.out(t.c);
    const zero = e.table([0]);
    if (ab && p.b === 'cols') {
      // acc[m][n] = x[m][k] · w[k][n]
      const ld = even(k);
      const x16 = e.scratch(m * ld * 2 + SLACK);
      K.widenRows(a, m, k, ld, x16);
      const rb = e.scratch(m * 4);
      K.rowBases(rb, m, 1, 1, ld, 0, 0);
      const bp = e.scratch(packedBytes(1, k, n));
      K.packPairs(b, zero, 1, k, n, 1, n, bp);
      K.convGemm(x16, rb, m, zero, 1, k, bp, n, c, n);
    } else if (!ab) {
      // g[m][n] = x[k][m]ᵀ · e[k][n] (the batch is the k rows)
      const rows = k;
      const Mp = even(rows);
      const x16 = e.scratch(rows * m * 2 + SLACK);
      K.widenRows(a, rows, m, m, x16);
      const rb = e.scratch(Mp * 4);
      K.rowBases(rb, rows, 1, 1, m, 0, 0);
      if (Mp > rows) e.i32(rb, Mp)[rows] = 0;
      const eT = e.scratch(ceil4(n) * Mp * 2);
      K.transposeWiden(b, rows, n, ceil4(n), Mp, eT);
      e.i32(c, m * n).fill(0);
      K.convGemmT(x16, rb, Mp, zero, 1, m, eT, n, c, 0, 1);
    } else {
      // h[m][n] = e[m][k] · w[n][k]ᵀ
      const ld = even(k);
      const e16 = e.scratch(m * ld * 2 + SLACK);
      K.widenRows(a, m, k, ld, e16);
      const rb = e.scratch(m * 4);
      K.rowBases(rb, m, 1, 1, ld, 0, 0);
      const bp = e.scratch(packedBytes(1, k, n));
      K.packPairs(b, zero, 1, k, 1, k, n, bp);
      K.convGemm(e16, rb, m, zero, 1, k, bp, n, c, n);
    }
    e.end();
    return true;
  },
};

// ---- conv ops (ops/conv-*.ts)

/** The padded hwc image of a conv input and how a patch row reads it. */
function convRuns(g: ConvGeometry) {
  const { channels: C, height: H, width: W, kernel: k, stride: s } = g;
  const pad = convPad(g);
  const Hp = H + 2 * pad;
  const Wp = W + 2 * pad;
  const kk = k * k;
  const byRow = C === 1;
  const runs = byRow ? k : kk;
  const runOff: number[] = [];
  if (byRow) for (let ky = 0; ky < k; ky++) runOff.push(ky * Wp);
  else for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) runOff.push((ky * Wp + kx) * C);
  return {
    pad,
    Hp,
    Wp,
    imgBytes: g.batch * Hp * Wp * C * 2 + SLACK,
    runs,
    runOff,
    L: byRow ? k : C,
    // patch column k = (c·k + ky)·k + kx = run·kRunMul + l·kLMul
    kRunMul: byRow ? k : 1,
    kLMul: byRow ? 1 : kk,
    rowStrides: [Hp * Wp * C, s * Wp * C, s * C] as const,
  };
}

function buildImage(e: WasmEngine, x: number, g: ConvGeometry, layout: 'chw' | 'hwc', shift: number) {
  const r = convRuns(g);
  const img = e.scratch(r.imgBytes);
  const { sb, sc, sy, sx } = imageStrides(layout, g);
  e.k.padImage(x, g.batch, g.channels, g.height, g.width, sb, sc, sy, sx, r.pad, shift, img);
  return { img, ...r };
}

function convForwardScratch(p: ConvForwardParams): number {
  const { rows } = patchShape(p);
  const r = convRuns(p);
  return r.imgBytes + r.runs * 8 + 32 + rows * 4 + packedBytes(r.runs, r.L, p.n) + rows * p.n * 4 + 64;
}

const convForwardOp: WasmOp<
  ConvForwardParams,
  {
    x: Int32Array;
    w8: Int8Array;
    bias: Int32Array;
    hIn: Int32Array;
    maxes: Uint32Array;
    z: Int32Array;
    h: Int32Array;
  }
> = {
  scratch: convForwardScratch,
  run(e, p, b) {
    if (!e.begin(convForwardScratch(p), values(b))) return false;
    const K = e.k;
    const N = p.n;
    const { rows: M } = patchShape(p);
    const { outH, outW } = patchShape(p);
    const shift = p.xSlot === NONE ? INPUT_SHIFT : quantShift(b.maxes[p.xSlot]);
    const r = buildImage(e, e.in(b.x), p, p.layout, shift);
    const runOff = e.table(r.runOff);
    const wRunOff = e.table(r.runOff.map((_, run) => run * r.kRunMul * N));
    const rb = e.scratch(M * 4);
    K.rowBases(rb, p.batch, outH, outW, ...r.rowStrides);
    const bp = e.scratch(packedBytes(r.runs, r.L, N));
    K.packPairs(e.in(b.w8), wRunOff, r.runs, r.L, r.kLMul * N, 1, N, bp);
    const acc = e.scratch(M * N * 4);
    K.convGemm(r.img, rb, M, runOff, r.runs, r.L, bp, N, acc, N);
    const eshift = operandShift(b.maxes, p.xSlot) + operandShift(b.maxes, p.wSlot) - 24;
    const hIn = p.residual ? e.in(b.hIn) : 0;
    const m = K.forwardEpilogue(
      acc,
      M,
      N,
      eshift,
      e.in(b.bias),
      e.out(b.z),
      e.out(b.h),
      hIn,
      act(p.act),
      p.residual ? 1 : 0,
    );
    e.end();
    foldMax(b.maxes, p.outSlot, m);
    return true;
  },
};

function inputGradGeometry(p: ConvInputGradParams) {
  const { channels: C, height: H, width: W, kernel: k, batch: B } = p;
  const N = p.n;
  const U = H + k - 1;
  const V = W + k - 1;
  const kk = k * k;
  const byRow = N === 1;
  const runs = byRow ? k : kk;
  const runOff: number[] = [];
  const wRunOff: number[] = [];
  if (byRow)
    for (let ky = 0; ky < k; ky++) {
      runOff.push(ky * V);
      wRunOff.push((k - 1 - ky) * k + (k - 1));
    }
  else
    for (let t = 0; t < kk; t++) {
      runOff.push((Math.floor(t / k) * V + (t % k)) * N);
      wRunOff.push((kk - 1 - t) * N);
    }
  return {
    U,
    V,
    runs,
    runOff,
    wRunOff,
    L: byRow ? k : N,
    lStride: byRow ? -1 : 1,
    colStride: byRow ? kk : kk * N,
    imgBytes: B * U * V * N * 2 + SLACK,
    count: B * H * W * C,
  };
}

function convInputGradScratch(p: ConvInputGradParams): number {
  const g = inputGradGeometry(p);
  const n = g.count;
  return g.imgBytes + g.runs * 8 + 32 + n * 4 + packedBytes(g.runs, g.L, p.channels) + n * 4 + 64;
}

const convInputGradOp: WasmOp<
  ConvInputGradParams,
  {
    e8: Int8Array;
    w8: Int8Array;
    z: Int32Array;
    ghRes: Int32Array;
    maxes: Uint32Array;
    ghOut: Int32Array;
    gz: Int32Array;
  }
> = {
  scratch: convInputGradScratch,
  run(e, p, b) {
    if (!e.begin(convInputGradScratch(p), values(b))) return false;
    const K = e.k;
    const g = inputGradGeometry(p);
    const { outH, outW } = patchShape(p);
    const { batch: B, channels: C, height: H, width: W, kernel: k, stride: s } = p;
    const img = e.scratch(g.imgBytes);
    K.dilateImage(e.in(b.e8), B, outH, outW, p.n, s, g.U, g.V, k - 1 - convPad(p), img);
    const runOff = e.table(g.runOff);
    const wRunOff = e.table(g.wRunOff);
    const rows = B * H * W;
    const rb = e.scratch(rows * 4);
    K.rowBases(rb, B, H, W, g.U * g.V * p.n, g.V * p.n, p.n);
    const bp = e.scratch(packedBytes(g.runs, g.L, C));
    K.packPairs(e.in(b.w8), wRunOff, g.runs, g.L, g.lStride, g.colStride, C, bp);
    const ghOut = e.out(b.ghOut);
    const n = g.count;
    if (p.layout === 'hwc') K.convGemm(img, rb, rows, runOff, g.runs, g.L, bp, C, ghOut, C);
    else {
      const dx = e.scratch(n * 4);
      K.convGemm(img, rb, rows, runOff, g.runs, g.L, bp, C, dx, C);
      const from = e.i32(dx, n);
      const to = e.i32(ghOut, n);
      const plane = H * W;
      for (let bi = 0; bi < B; bi++)
        for (let px = 0; px < plane; px++)
          for (let c = 0; c < C; c++) to[(bi * C + c) * plane + px] = from[(bi * plane + px) * C + c];
    }
    const shift = quantShift(b.maxes[p.eSlot]) + quantShift(b.maxes[p.wSlot]) - 24;
    const ghRes = p.residual ? e.in(b.ghRes) : 0;
    const m = K.backwardEpilogue(
      ghOut,
      n,
      shift,
      ghRes,
      p.residual ? 1 : 0,
      e.in(b.z),
      act(p.act),
      ghOut,
      e.out(b.gz),
    );
    e.end();
    foldMax(b.maxes, p.gzSlot, m);
    return true;
  },
};

function convWeightGradScratch(p: ConvWeightGradParams): number {
  const { rows } = patchShape(p);
  const r = convRuns(p);
  const Mp = even(rows);
  return r.imgBytes + r.runs * 4 + 16 + Mp * 4 + 16 + ceil4(p.n) * Mp * 2 + 64;
}

const convWeightGradOp: WasmOp<
  ConvWeightGradParams,
  { x: Int32Array; maxes: Uint32Array; e8: Int8Array; gz: Int32Array; acc: Int32Array }
> = {
  scratch: convWeightGradScratch,
  run(e, p, b) {
    if (!e.begin(convWeightGradScratch(p), values(b))) return false;
    const K = e.k;
    const N = p.n;
    const { rows: M, cols, outH, outW } = patchShape(p);
    const shift = p.xSlot === NONE ? INPUT_SHIFT : quantShift(b.maxes[p.xSlot]);
    const r = buildImage(e, e.in(b.x), p, p.layout, shift);
    const runOff = e.table(r.runOff);
    const Mp = even(M);
    const rb = e.scratch(Mp * 4);
    K.rowBases(rb, p.batch, outH, outW, ...r.rowStrides);
    if (Mp > M) e.i32(rb, Mp)[M] = 0;
    const eT = e.scratch(ceil4(N) * Mp * 2);
    K.transposeWiden(e.in(b.e8), M, N, ceil4(N), Mp, eT);
    const acc = e.out(b.acc);
    K.convGemmT(r.img, rb, Mp, runOff, r.runs, r.L, eT, N, acc, r.kRunMul, r.kLMul);
    K.addColumnSums(e.in(b.gz), M, N, acc + cols * N * 4);
    e.end();
    return true;
  },
};

// ---- elementwise ops

const forwardOp: WasmOp<
  ForwardParams,
  { acc: Int32Array; bias: Int32Array; hIn: Int32Array; maxes: Uint32Array; z: Int32Array; h: Int32Array }
> = {
  scratch: () => 0,
  run(e, p, b) {
    if (!e.begin(0, values(b))) return false;
    const shift = operandShift(b.maxes, p.xSlot) + operandShift(b.maxes, p.wSlot) - 24;
    const hIn = p.residual ? e.in(b.hIn) : 0;
    const m = e.k.forwardEpilogue(
      e.in(b.acc),
      p.rows,
      p.n,
      shift,
      e.in(b.bias),
      e.out(b.z),
      e.out(b.h),
      hIn,
      act(p.act),
      p.residual ? 1 : 0,
    );
    e.end();
    foldMax(b.maxes, p.outSlot, m);
    return true;
  },
};

const backwardOp: WasmOp<
  BackwardParams,
  { acc: Int32Array; z: Int32Array; ghRes: Int32Array; maxes: Uint32Array; ghOut: Int32Array; gz: Int32Array }
> = {
  scratch: () => 0,
  run(e, p, b) {
    if (!e.begin(0, values(b))) return false;
    const shift = quantShift(b.maxes[p.eSlot]) + quantShift(b.maxes[p.wSlot]) - 24;
    const ghRes = p.residual ? e.in(b.ghRes) : 0;
    const m = e.k.backwardEpilogue(
      e.in(b.acc),
      p.count,
      shift,
      ghRes,
      p.residual ? 1 : 0,
      e.in(b.z),
      act(p.act),
      e.out(b.ghOut),
      e.out(b.gz),
    );
    e.end();
    // backward.ts folds unconditionally (its gzSlot is always a slot).
    if (m >>> 0 > b.maxes[p.gzSlot]) b.maxes[p.gzSlot] = m >>> 0;
    return true;
  },
};

const sgdOp: WasmOp<
  SgdParams,
  {
    acc: Int32Array;
    gz: Int32Array;
    maxes: Uint32Array;
    w: Int32Array;
    vw: Int32Array;
    bias: Int32Array;
    vb: Int32Array;
  }
> = {
  scratch: (p) => p.n * 4 + 16,
  run(e, p, b) {
    if (!e.begin(p.n * 4 + 16, values(b))) return false;
    const { k, n, learningRateQ16: lr, momentumQ16: mom, weightDecayQ24: wd } = p;
    const shift = operandShift(b.maxes, p.xSlot) + operandShift(b.maxes, p.eSlot) - 16;
    const acc = e.out(b.acc);
    const m = e.k.sgdRescaled(e.out(b.w), e.out(b.vw), acc, k * n, shift, lr, mom, wd);
    const gb = e.scratch(n * 4);
    const g = e.i32(gb, n);
    if (p.accumulated) {
      g.set(e.i32(acc + k * n * 4, n));
      e.i32(acc, k * n + n).fill(0);
    } else {
      g.fill(0);
      e.k.addColumnSums(e.in(b.gz), p.rows, n, gb);
    }
    e.k.sgdPlain(e.out(b.bias), e.out(b.vb), gb, n, lr, mom, wd);
    e.end();
    foldMax(b.maxes, p.wNextSlot, m);
    return true;
  },
};

const quantizeOp: WasmOp<
  QuantizeParams,
  { x: Int32Array; maxes: Uint32Array; state: Uint32Array; out: Int8Array }
> = {
  scratch: () => 0,
  run(e, p, b) {
    if (!e.begin(0, [b.x, b.out])) return false;
    const n = p.rows * p.cols;
    const s = quantShift(b.maxes[p.slot]);
    const x = e.in(b.x);
    const q = e.out(b.out);
    if (p.tensor === null) e.k.roundHalfEven(x, q, n, s);
    else {
      const mask = s >= 32 ? -1 : 2 ** s - 1;
      e.k.roundStochastic(x, q, n, s, rngKey(p.seed, b.state[0], p.tensor), mask);
    }
    e.end();
    return true;
  },
};

const maxabsOp: WasmOp<MaxabsParams, { x: Int32Array; maxes: Uint32Array }> = {
  scratch: () => 0,
  run(e, p, b) {
    if (!e.begin(0, [b.x])) return false;
    const m = e.k.maxAbs(e.in(b.x), p.n);
    e.end();
    foldMax(b.maxes, p.slot, m);
    return true;
  },
};

const maxpoolOp: WasmOp<
  MaxpoolParams,
  { x: Int32Array; maxes: Uint32Array; y: Int32Array; arg: Uint32Array }
> = {
  scratch: () => 0,
  run(e, p, b) {
    checkPoolable(p);
    if (!e.begin(0, [b.x, b.y, b.arg])) return false;
    const out = pooledShape(p);
    const i = imageStrides(p.layout, p);
    const o = imageStrides(p.layout, out);
    const m = e.k.maxpool(
      e.in(b.x),
      e.out(b.y),
      e.out(b.arg),
      p.batch,
      p.channels,
      out.height,
      out.width,
      i.sb,
      i.sc,
      i.sy,
      i.sx,
      o.sb,
      o.sc,
      o.sy,
      o.sx,
    );
    e.end();
    foldMax(b.maxes, p.outSlot, m);
    return true;
  },
};

const maxpoolBackwardOp: WasmOp<
  MaxpoolBackwardParams,
  { dy: Int32Array; arg: Uint32Array; z: Int32Array; maxes: Uint32Array; gh: Int32Array; gz: Int32Array }
> = {
  scratch: () => 0,
  run(e, p, b) {
    checkPoolable(p);
    if (!e.begin(0, [b.dy, b.arg, b.z, b.gh, b.gz])) return false;
    const out = pooledShape(p);
    const i = imageStrides(p.layout, p);
    const o = imageStrides(p.layout, out);
    const m = e.k.maxpoolBackward(
      e.in(b.dy),
      e.in(b.arg),
      e.in(b.z),
      e.out(b.gh),
      e.out(b.gz),
      p.batch,
      p.channels,
      p.height,
      p.width,
      out.height,
      out.width,
      i.sb,
      i.sc,
      i.sy,
      i.sx,
      o.sb,
      o.sc,
      o.sy,
      o.sx,
      act(p.act),
    );
    e.end();
    foldMax(b.maxes, p.gzSlot, m);
    return true;
  },
};

/** The ops with a WASM twin, by op name (../ops/index.ts). */
export const WASM_OPS: Readonly<Record<string, WasmOp>> = {
  matmul: matmulOp,
  'conv-forward': convForwardOp,
  'conv-input-grad': convInputGradOp,
  'conv-weight-grad': convWeightGradOp,
  forward: forwardOp,
  backward: backwardOp,
  sgd: sgdOp,
  quantize: quantizeOp,
  maxabs: maxabsOp,
  maxpool: maxpoolOp,
  'maxpool-backward': maxpoolBackwardOp,
};
