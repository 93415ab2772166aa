/**
 * THE OP LIST: every operation of a training step, as data. Start here.
 *
 * Each entry names
 *   - its CPU twin, ops/<name>.ts (the reference: plain loops on typed arrays),
 *   - its WGSL kernel, ops/<name>.wgsl (same name; `libs` are the helper files prepended to it),
 *   - its shape rule (`shapes`: params → the shape of every binding, outputs included; `grid`: the
 *     workgroups of one dispatch) and its bindings (`bindings`, in WGSL binding order from 1; the
 *     uniform from `uniform(params)` is binding 0).
 * A plan (../compile.ts) turns a spec into op invocations over named buffers (../program.ts); the
 * CPU backend calls the twins, the WebGPU backend (../webgpu/program.ts) records the kernels.
 * webgpu/oplist.test.ts runs every entry, twin against kernel, on random shapes.
 *
 * How to add an op:
 *   1. ops/<name>.wgsl: `@group(0) @binding(0) var<uniform> p: Params;` then the storage bindings in
 *      the order you list them below (an i8 tensor written in both k-packed layouts takes two:
 *      by_row then by_col; see quantize.wgsl). Run `npx tsx src/engine/webgpu/gen-kernels.ts`.
 *   2. ops/<name>.ts: the twin, `(params, buffers) => void`, same integers as the kernel, and a test
 *      of it against an obviously-correct reference (ops/<name>.test.ts).
 *   3. An entry here (defineOp), with a `sample` that draws small random params; the op-list parity
 *      test picks it up with no further code.
 *   4. Use it in a plan rule (../compile.ts) and document its arithmetic in docs/ARITHMETIC.md.
 */
import { ACTIVATIONS, type Activation } from '../../protocol/spec.ts';
import { type BackwardParams, backward } from './backward.ts';
import { type Col2imParams, col2im } from './col2im.ts';
import { type Col2imBackwardParams, col2imBackward } from './col2im-backward.ts';
import { type ConvForwardParams, convForward } from './conv-forward.ts';
import { type ConvInputGradParams, convInputGrad } from './conv-input-grad.ts';
import { type ConvTiling, checkTiling, sampleTiling } from './conv-tiling.ts';
import { type ConvWeightGradParams, convWeightGrad } from './conv-weight-grad.ts';
import { type ForwardParams, forward } from './forward.ts';
import { type GapParams, gap } from './gap.ts';
import { type GapBackwardParams, gapBackward } from './gap-backward.ts';
import { type GatherParams, gather, INPUT_SHIFT } from './gather.ts';
import { type Im2colParams, im2col } from './im2col.ts';
import {
  type ConvGeometry,
  elementCount,
  type ImageLayout,
  type ImageShape,
  layoutCode,
  patchShape,
} from './image.ts';
import { type MatmulParams, matmul } from './matmul.ts';
import { type MaxabsParams, maxabs } from './maxabs.ts';
import { type MaxpoolParams, maxpool, pooledShape } from './maxpool.ts';
import { type MaxpoolBackwardParams, maxpoolBackward } from './maxpool-backward.ts';
import { type BindingDef, grid1d, NONE, type OpDef, type OpParams, packedWords, slotsLength } from './op.ts';
import { type QuantizeParams, quantize } from './quantize.ts';
import { type SgdParams, sgd } from './sgd.ts';
import { type SoftmaxXentParams, softmaxXentRows } from './softmax-xent.ts';
import { type StepParams, step } from './step.ts';
import { type TransposeParams, transpose } from './transpose.ts';

export * from './op.ts';

/** Keeps an entry's params and twin buffers typed while the list holds them all. */
export function defineOp<P extends OpParams, B>(def: OpDef<P, B>): OpDef<P, B> {
  return def;
}

/** The `act` codes of activation.wgsl (0: identity). */
export const ACTIVATION_CODE = { relu: 1, leaky_relu: 2, hardtanh: 3, gelu: 4 } as const;
const actCode = (act: Activation | null) => (act ? ACTIVATION_CODE[act] : 0);
/** Workgroups of a max-abs scan (each thread then covers a grid-stride slice). */
const MAXABS_GROUPS = 64;
/** Outputs per workgroup side in matmul.wgsl (8 threads × 4). */
const MATMUL_TILE = 32;

const read = <P>(slot: string, type: BindingDef<P>['type']): BindingDef<P> => ({
  slot,
  type,
  access: 'read',
});
const write = <P>(slot: string, type: BindingDef<P>['type']): BindingDef<P> => ({
  slot,
  type,
  access: 'write',
});
const readWrite = <P>(slot: string, type: BindingDef<P>['type']): BindingDef<P> => ({
  slot,
  type,
  access: 'read_write',
});
const i8Both = <P>(slot: string): BindingDef<P> => ({ slot, type: 'i8', access: 'write', layout: 'both' });
const between = (draw: (n: number) => number, lo: number, hi: number) => lo + draw(hi - lo + 1);

// ---- samplers for the conv ops' parity cases (small odd shapes, both layouts)
const sampleLayout = (draw: (n: number) => number): ImageLayout => (draw(2) ? 'hwc' : 'chw');
const sampleImage = (draw: (n: number) => number, minSide = 1): ImageShape => ({
  batch: between(draw, 1, 3),
  channels: between(draw, 1, 5),
  height: between(draw, minSide, 11),
  width: between(draw, minSide, 11),
});
const sampleConv = (draw: (n: number) => number): ConvGeometry => ({
  ...sampleImage(draw),
  kernel: [1, 3, 5][draw(3)],
  stride: 1 + draw(2),
});
const sampleAct = (draw: (n: number) => number) =>
  draw(5) === 0 ? null : ACTIVATIONS[draw(ACTIVATIONS.length)];
const pooledCount = (s: ImageShape) => elementCount(pooledShape(s));
const imageUniform = (s: ImageShape) => [s.batch, s.channels, s.height, s.width];
const convUniform = (g: ConvGeometry) => {
  const { outH, outW } = patchShape(g);
  return [...imageUniform(g), g.kernel, g.stride, outH, outW];
};

/** The override constants of a conv kernel's tiling (checked: valid on every size). */
const tilingConstants = (t: ConvTiling, contextRows: number, everyThreadARow = true) => {
  checkTiling(t, contextRows);
  if (everyThreadARow && t.wgM * t.wgN !== 64)
    throw new Error(`conv tiling: wgM ${t.wgM} × wgN ${t.wgN} must be 64 threads`);
  return { NB: t.nb, WG_N: t.wgN, WG_M: t.wgM, TILED: t.tiled ? 1 : 0, BK: t.bk };
};
/** Workgroups of a conv GEMM over `rows` × `cols` outputs, 4·nb·wgN columns by 4·wgM rows each. */
const gemmGrid = (cols: number, rows: number, t: ConvTiling): [number, number] =>
  grid1d(Math.ceil(cols / (4 * t.nb * t.wgN)) * Math.ceil(rows / (4 * t.wgM)), 1);

export const OPS = {
  maxabs: defineOp<MaxabsParams, Parameters<typeof maxabs>[1]>({
    name: 'maxabs',
    libs: ['fixed'],
    bindings: [read('x', 'i32'), readWrite('maxes', 'u32')],
    shapes: (p) => ({ x: [p.n], maxes: [slotsLength(p.slot)] }),
    uniform: (p) => [p.n, p.slot],
    grid: (p) => [Math.min(MAXABS_GROUPS, grid1d(p.n)[0]), 1],
    twin: maxabs,
    sample: (draw) => ({ n: between(draw, 1, 3000), slot: draw(4) }),
  }),

  quantize: defineOp<QuantizeParams, Parameters<typeof quantize>[1]>({
    name: 'quantize',
    libs: ['fixed', 'rng'],
    bindings: [read('x', 'i32'), read('maxes', 'u32'), read('state', 'u32'), i8Both('out')],
    shapes: (p) => ({
      x: [p.rows * p.cols],
      maxes: [slotsLength(p.slot)],
      state: [4],
      out: [p.rows, p.cols],
    }),
    uniform: (p) => [p.rows, p.cols, p.slot, p.tensor ?? 0, p.seed],
    constants: (p) => ({ STOCHASTIC: p.tensor === null ? 0 : 1 }),
    grid: (p) => grid1d(packedWords(p.rows, p.cols)),
    twin: quantize,
    sample: (draw) => ({
      rows: between(draw, 1, 40),
      cols: between(draw, 1, 70),
      slot: draw(3),
      tensor: draw(2) ? 0x300 + draw(4) : null,
      seed: draw(2 ** 31),
    }),
  }),

  gather: defineOp<GatherParams, Parameters<typeof gather>[1]>({
    name: 'gather',
    libs: [],
    bindings: [
      read('pixels', 'u8'),
      read('labels', 'u8'),
      read('order', 'u32'),
      read('state', 'u32'),
      i8Both('x8'),
      write('y', 'u32'),
      write('xWide', 'i32'),
    ],
    shapes: (p) => ({
      pixels: [p.count * p.features],
      labels: [p.count],
      order: [p.base + p.rows * (p.perStep ? p.steps : 1)],
      state: [4],
      x8: [p.rows, p.features],
      y: [p.rows],
      xWide: [p.widen ? p.rows * p.features : 1],
    }),
    uniform: (p) => [p.rows, p.features, p.base, 0],
    constants: (p) => ({ PER_STEP: p.perStep ? 1 : 0, WIDEN: p.widen ? 1 : 0 }),
    grid: (p) => grid1d(Math.max(packedWords(p.rows, p.features), p.rows * p.features)),
    twin: gather,
    sample: (draw) => ({
      rows: between(draw, 1, 20),
      features: between(draw, 1, 50),
      base: draw(5),
      perStep: draw(2) === 1,
      widen: draw(2) === 1,
      count: between(draw, 1, 30),
      // the parity test's random state[1] is below 4
      steps: 4,
    }),
    sampleInputs: (p, draw) => ({
      order: Array.from({ length: p.base + p.rows * (p.perStep ? p.steps : 1) }, () => draw(p.count)),
    }),
  }),

  matmul: defineOp<MatmulParams, Parameters<typeof matmul>[1]>({
    name: 'matmul',
    // 'dot4' is dot4-packed.wgsl or dot4-plain.wgsl, whichever the adapter supports.
    libs: ['dot4'],
    bindings: [
      { slot: 'a', type: 'i8', access: 'read', layout: (p) => p.a },
      { slot: 'b', type: 'i8', access: 'read', layout: (p) => p.b },
      write('c', 'i32'),
    ],
    shapes: (p) => ({
      a: p.a === 'rows' ? [p.m, p.k] : [p.k, p.m],
      b: p.b === 'cols' ? [p.k, p.n] : [p.n, p.k],
      c: [p.m * p.n],
    }),
    uniform: (p) => [p.m, p.n, Math.ceil(p.k / 4), 0],
    grid: (p) => [Math.ceil(p.n / MATMUL_TILE), Math.ceil(p.m / MATMUL_TILE)],
    twin: matmul,
    sample: (draw) => ({
      m: between(draw, 1, 70),
      n: between(draw, 1, 70),
      k: between(draw, 1, 70),
      a: draw(2) ? 'rows' : 'cols',
      b: draw(2) ? 'rows' : 'cols',
    }),
  }),

  forward: defineOp<ForwardParams, Parameters<typeof forward>[1]>({
    name: 'forward',
    libs: ['fixed', 'activation'],
    bindings: [
      read('acc', 'i32'),
      read('bias', 'i32'),
      read('hIn', 'i32'),
      readWrite('maxes', 'u32'),
      write('z', 'i32'),
      write('h', 'i32'),
    ],
    shapes: (p) => ({
      acc: [p.rows * p.n],
      bias: [p.n],
      hIn: [p.residual ? p.rows * p.n : 1],
      maxes: [slotsLength(p.xSlot, p.wSlot, p.outSlot)],
      z: [p.rows * p.n],
      h: [p.rows * p.n],
    }),
    uniform: (p) => [p.rows, p.n, p.xSlot, p.wSlot, p.outSlot],
    constants: (p) => ({ ACT: actCode(p.act), RESIDUAL: p.residual ? 1 : 0 }),
    grid: (p) => grid1d(p.rows * p.n),
    twin: forward,
    sample: (draw) => ({
      rows: between(draw, 1, 30),
      n: between(draw, 1, 40),
      xSlot: draw(3) === 0 ? NONE : draw(2),
      wSlot: 2,
      outSlot: draw(3) === 0 ? NONE : 3,
      act: draw(5) === 0 ? null : ACTIVATIONS[draw(ACTIVATIONS.length)],
      residual: draw(2) === 1,
    }),
  }),

  'softmax-xent': defineOp<SoftmaxXentParams, Parameters<typeof softmaxXentRows>[1]>({
    name: 'softmax-xent',
    libs: ['fixed'],
    bindings: [
      read('logits', 'i32'),
      read('y', 'u32'),
      read('state', 'u32'),
      readWrite('maxes', 'u32'),
      write('gz', 'i32'),
      write('stats', 'i32'),
    ],
    shapes: (p) => ({
      logits: [p.rows * p.classes],
      y: [p.rows],
      state: [4],
      maxes: [slotsLength(p.gzSlot)],
      gz: [p.train ? p.rows * p.classes : 1],
      stats: [p.statsRows, 2],
    }),
    uniform: (p) => [p.rows, p.classes, p.gradDivisor, p.base, p.gzSlot],
    constants: (p) => ({ TRAIN: p.train ? 1 : 0, PER_STEP: p.perStep ? 1 : 0 }),
    grid: (p) => grid1d(p.rows, 64),
    twin: softmaxXentRows,
    sample: (draw) => {
      const rows = between(draw, 1, 40);
      const perStep = draw(2) === 1;
      const base = draw(10);
      return {
        rows,
        classes: between(draw, 2, 12),
        gradDivisor: between(draw, 1, 128),
        base,
        gzSlot: draw(3),
        train: draw(2) === 1,
        perStep,
        // state[1] < 4 in the parity test's random state
        statsRows: base + rows * (perStep ? 4 : 1),
      };
    },
    sampleInputs: (p, draw) => ({ y: Array.from({ length: p.rows }, () => draw(p.classes)) }),
  }),

  backward: defineOp<BackwardParams, Parameters<typeof backward>[1]>({
    name: 'backward',
    libs: ['fixed', 'activation'],
    bindings: [
      read('acc', 'i32'),
      read('z', 'i32'),
      read('ghRes', 'i32'),
      readWrite('maxes', 'u32'),
      write('ghOut', 'i32'),
      write('gz', 'i32'),
    ],
    shapes: (p) => ({
      acc: [p.count],
      z: [p.count],
      ghRes: [p.residual ? p.count : 1],
      maxes: [slotsLength(p.eSlot, p.wSlot, p.gzSlot)],
      ghOut: [p.count],
      gz: [p.count],
    }),
    uniform: (p) => [p.count, p.eSlot, p.wSlot, p.gzSlot],
    constants: (p) => ({ ACT: actCode(p.act), RESIDUAL: p.residual ? 1 : 0 }),
    grid: (p) => grid1d(p.count),
    twin: backward,
    sample: (draw) => ({
      count: between(draw, 1, 2000),
      eSlot: 0,
      wSlot: 1,
      gzSlot: 2,
      act: draw(5) === 0 ? null : ACTIVATIONS[draw(ACTIVATIONS.length)],
      residual: draw(2) === 1,
    }),
  }),

  sgd: defineOp<SgdParams, Parameters<typeof sgd>[1]>({
    name: 'sgd',
    libs: ['fixed'],
    bindings: [
      readWrite('acc', 'i32'),
      read('gz', 'i32'),
      readWrite('maxes', 'u32'),
      readWrite('w', 'i32'),
      readWrite('vw', 'i32'),
      readWrite('bias', 'i32'),
      readWrite('vb', 'i32'),
    ],
    shapes: (p) => ({
      acc: [p.k * p.n + (p.accumulated ? p.n : 0)],
      gz: [p.accumulated ? 1 : p.rows * p.n],
      maxes: [slotsLength(p.xSlot, p.eSlot, p.wNextSlot)],
      w: [p.k * p.n],
      vw: [p.k * p.n],
      bias: [p.n],
      vb: [p.n],
    }),
    uniform: (p) => [
      p.k,
      p.n,
      p.rows,
      p.xSlot,
      p.eSlot,
      p.learningRateQ16,
      p.momentumQ16,
      p.weightDecayQ24,
      p.wNextSlot,
    ],
    constants: (p) => ({ ACCUMULATED: p.accumulated ? 1 : 0 }),
    grid: (p) => grid1d(p.k * p.n + p.n),
    twin: sgd,
    sample: (draw) => ({
      k: between(draw, 1, 50),
      n: between(draw, 1, 30),
      rows: between(draw, 1, 20),
      xSlot: draw(3) === 0 ? NONE : 0,
      eSlot: 1,
      learningRateQ16: draw(65536),
      momentumQ16: draw(2) ? 0 : draw(65536),
      weightDecayQ24: draw(2) ? 0 : draw(2 ** 16),
      wNextSlot: 3,
      accumulated: draw(2) === 1,
    }),
  }),

  step: defineOp<StepParams, Parameters<typeof step>[1]>({
    name: 'step',
    libs: [],
    bindings: [readWrite('maxes', 'u32'), readWrite('state', 'u32')],
    shapes: (p) => ({ maxes: [p.slots], state: [4] }),
    uniform: (p) => [p.layers, p.clearFrom, p.clearCount, p.advance ? 1 : 0],
    grid: () => [1, 1],
    twin: step,
    sample: (draw) => {
      const layers = draw(4);
      const clearFrom = 4 * layers + draw(3);
      const clearCount = draw(5);
      return { layers, clearFrom, clearCount, advance: draw(2) === 1, slots: clearFrom + clearCount + 1 };
    },
  }),
  // ---- conv ops (docs/ARITHMETIC.md, "Convolutional layers"); tensors in `layout` (chw or hwc)

  im2col: defineOp<Im2colParams, Parameters<typeof im2col>[1]>({
    name: 'im2col',
    libs: ['fixed'],
    bindings: [read('x', 'i32'), read('maxes', 'u32'), i8Both('patches')],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      return { x: [elementCount(p)], maxes: [slotsLength(p.xSlot)], patches: [rows, cols] };
    },
    uniform: (p) => [...convUniform(p), p.xSlot, INPUT_SHIFT],
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout) }),
    grid: (p) => {
      const { rows, cols } = patchShape(p);
      return grid1d(packedWords(rows, cols));
    },
    twin: im2col,
    sample: (draw) => ({
      ...sampleConv(draw),
      layout: sampleLayout(draw),
      xSlot: draw(3) === 0 ? NONE : draw(2),
    }),
  }),

  col2im: defineOp<Col2imParams, Parameters<typeof col2im>[1]>({
    name: 'col2im',
    libs: ['col2im-gather'],
    bindings: [read('dP', 'i32'), write('dX', 'i32')],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      return { dP: [rows * cols], dX: [elementCount(p)] };
    },
    uniform: convUniform,
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout) }),
    grid: (p) => grid1d(elementCount(p)),
    twin: col2im,
    sample: (draw) => ({ ...sampleConv(draw), layout: sampleLayout(draw) }),
  }),

  'col2im-backward': defineOp<Col2imBackwardParams, Parameters<typeof col2imBackward>[1]>({
    name: 'col2im-backward',
    libs: ['fixed', 'activation', 'col2im-gather'],
    bindings: [
      read('dP', 'i32'),
      read('z', 'i32'),
      read('ghRes', 'i32'),
      readWrite('maxes', 'u32'),
      write('ghOut', 'i32'),
      write('gz', 'i32'),
    ],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      const n = elementCount(p);
      return {
        dP: [rows * cols],
        z: [n],
        ghRes: [p.residual ? n : 1],
        maxes: [slotsLength(p.eSlot, p.wSlot, p.gzSlot)],
        ghOut: [n],
        gz: [n],
      };
    },
    uniform: (p) => [...convUniform(p), p.eSlot, p.wSlot, p.gzSlot],
    constants: (p) => ({
      CHANNELS_LAST: layoutCode(p.layout),
      ACT: actCode(p.act),
      RESIDUAL: p.residual ? 1 : 0,
    }),
    grid: (p) => grid1d(elementCount(p)),
    twin: col2imBackward,
    sample: (draw) => ({
      ...sampleConv(draw),
      layout: sampleLayout(draw),
      eSlot: 0,
      wSlot: 1,
      gzSlot: draw(3) === 0 ? NONE : 2,
      act: sampleAct(draw),
      residual: draw(2) === 1,
    }),
  }),

  // ---- implicit-GEMM conv ops (no patch matrix in memory; docs/KERNELS.md, "Implicit-GEMM conv")

  'conv-forward': defineOp<ConvForwardParams, Parameters<typeof convForward>[1]>({
    name: 'conv-forward',
    libs: ['dot4', 'fixed', 'activation', 'conv-gemm', 'conv-patch'],
    bindings: [
      read('x', 'i32'),
      { slot: 'w8', type: 'i8', access: 'read', layout: 'cols' },
      read('bias', 'i32'),
      read('hIn', 'i32'),
      readWrite('maxes', 'u32'),
      write('z', 'i32'),
      write('h', 'i32'),
    ],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      const out = rows * p.n;
      return {
        x: [elementCount(p)],
        w8: [cols, p.n],
        bias: [p.n],
        hIn: [p.residual ? out : 1],
        maxes: [slotsLength(p.xSlot, p.wSlot, p.outSlot)],
        z: [out],
        h: [out],
      };
    },
    uniform: (p) => [...convUniform(p), p.n, p.xSlot, p.wSlot, p.outSlot, INPUT_SHIFT],
    constants: (p) => ({
      CHANNELS_LAST: layoutCode(p.layout),
      ACT: actCode(p.act),
      RESIDUAL: p.residual ? 1 : 0,
      ...tilingConstants(p, 4 * p.wgM),
    }),
    grid: (p) => gemmGrid(p.n, patchShape(p).rows, p),
    twin: convForward,
    sample: (draw) => {
      const g = sampleConv(draw);
      const n = between(draw, 1, 12);
      // A residual conv keeps its input's shape: stride 1, n = channels, hwc.
      const residual = g.stride === 1 && draw(3) === 0;
      return {
        ...g,
        ...sampleTiling(draw),
        layout: residual ? 'hwc' : sampleLayout(draw),
        n: residual ? g.channels : n,
        xSlot: draw(3) === 0 ? NONE : 0,
        wSlot: 1,
        outSlot: draw(3) === 0 ? NONE : 2,
        act: sampleAct(draw),
        residual,
      };
    },
  }),

  'conv-input-grad': defineOp<ConvInputGradParams, Parameters<typeof convInputGrad>[1]>({
    name: 'conv-input-grad',
    libs: ['dot4', 'fixed', 'activation', 'conv-gemm'],
    bindings: [
      { slot: 'e8', type: 'i8', access: 'read', layout: 'rows' },
      { slot: 'w8', type: 'i8', access: 'read', layout: 'rows' },
      read('z', 'i32'),
      read('ghRes', 'i32'),
      readWrite('maxes', 'u32'),
      write('ghOut', 'i32'),
      write('gz', 'i32'),
    ],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      const n = elementCount(p);
      return {
        e8: [rows, p.n],
        w8: [cols, p.n],
        z: [n],
        ghRes: [p.residual ? n : 1],
        maxes: [slotsLength(p.eSlot, p.wSlot, p.gzSlot)],
        ghOut: [n],
        gz: [n],
      };
    },
    uniform: (p) => [...convUniform(p), p.n, p.eSlot, p.wSlot, p.gzSlot],
    constants: (p) => ({
      CHANNELS_LAST: layoutCode(p.layout),
      ACT: actCode(p.act),
      RESIDUAL: p.residual ? 1 : 0,
      ...tilingConstants(p, 4 * p.wgM),
    }),
    grid: (p) => gemmGrid(p.channels, p.batch * p.height * p.width, p),
    twin: convInputGrad,
    sample: (draw) => ({
      ...sampleConv(draw),
      ...sampleTiling(draw),
      layout: sampleLayout(draw),
      n: between(draw, 1, 12),
      eSlot: 0,
      wSlot: 1,
      gzSlot: draw(3) === 0 ? NONE : 2,
      act: sampleAct(draw),
      residual: draw(2) === 1,
    }),
  }),

  'conv-weight-grad': defineOp<ConvWeightGradParams, Parameters<typeof convWeightGrad>[1]>({
    name: 'conv-weight-grad',
    libs: ['dot4', 'fixed', 'conv-gemm', 'conv-patch'],
    bindings: [
      read('x', 'i32'),
      read('maxes', 'u32'),
      { slot: 'e8', type: 'i8', access: 'read', layout: 'cols' },
      read('gz', 'i32'),
      readWrite('acc', 'i32'),
    ],
    shapes: (p) => {
      const { rows, cols } = patchShape(p);
      return {
        x: [elementCount(p)],
        maxes: [slotsLength(p.xSlot)],
        e8: [rows, p.n],
        gz: [rows * p.n],
        acc: [cols * p.n + p.n],
      };
    },
    uniform: (p) => [...convUniform(p), p.n, p.xSlot, INPUT_SHIFT, p.splitWords],
    constants: (p) => ({
      CHANNELS_LAST: layoutCode(p.layout),
      ...tilingConstants(p, 4 * p.bk + 4 * p.wgM, false),
    }),
    grid: (p) => {
      const { rows, cols } = patchShape(p);
      const tiles = Math.ceil(cols / (4 * p.wgM)) * Math.ceil(p.n / (4 * p.nb * p.wgN)) + 1;
      return grid1d(tiles * Math.ceil(Math.ceil(rows / 4) / p.splitWords), 1);
    },
    twin: convWeightGrad,
    sample: (draw) => ({
      ...sampleConv(draw),
      ...sampleTiling(draw, true),
      layout: sampleLayout(draw),
      n: between(draw, 1, 12),
      xSlot: draw(3) === 0 ? NONE : 0,
      splitWords: between(draw, 1, 40),
    }),
  }),

  maxpool: defineOp<MaxpoolParams, Parameters<typeof maxpool>[1]>({
    name: 'maxpool',
    libs: ['fixed'],
    bindings: [read('x', 'i32'), readWrite('maxes', 'u32'), write('y', 'i32'), write('arg', 'u32')],
    shapes: (p) => ({
      x: [elementCount(p)],
      maxes: [slotsLength(p.outSlot)],
      y: [pooledCount(p)],
      arg: [pooledCount(p)],
    }),
    uniform: (p) => [...imageUniform(p), p.outSlot],
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout) }),
    grid: (p) => grid1d(pooledCount(p)),
    twin: maxpool,
    sample: (draw) => ({
      ...sampleImage(draw, 2),
      layout: sampleLayout(draw),
      outSlot: draw(3) === 0 ? NONE : 1,
    }),
  }),

  'maxpool-backward': defineOp<MaxpoolBackwardParams, Parameters<typeof maxpoolBackward>[1]>({
    name: 'maxpool-backward',
    libs: ['fixed', 'activation'],
    bindings: [
      read('dy', 'i32'),
      read('arg', 'u32'),
      read('z', 'i32'),
      readWrite('maxes', 'u32'),
      write('gh', 'i32'),
      write('gz', 'i32'),
    ],
    shapes: (p) => ({
      dy: [pooledCount(p)],
      arg: [pooledCount(p)],
      z: [elementCount(p)],
      maxes: [slotsLength(p.gzSlot)],
      gh: [elementCount(p)],
      gz: [elementCount(p)],
    }),
    uniform: (p) => [...imageUniform(p), p.gzSlot],
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout), ACT: actCode(p.act) }),
    grid: (p) => grid1d(elementCount(p)),
    twin: maxpoolBackward,
    sample: (draw) => ({
      ...sampleImage(draw, 2),
      layout: sampleLayout(draw),
      act: sampleAct(draw),
      gzSlot: draw(3) === 0 ? NONE : 1,
    }),
    sampleInputs: (p, draw) => ({ arg: Array.from({ length: pooledCount(p) }, () => draw(4)) }),
  }),

  gap: defineOp<GapParams, Parameters<typeof gap>[1]>({
    name: 'gap',
    libs: ['fixed', 'pool-div'],
    bindings: [read('x', 'i32'), readWrite('maxes', 'u32'), write('y', 'i32')],
    shapes: (p) => ({ x: [elementCount(p)], maxes: [slotsLength(p.outSlot)], y: [p.batch * p.channels] }),
    uniform: (p) => [...imageUniform(p), p.outSlot],
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout) }),
    grid: (p) => grid1d(p.batch * p.channels, 64),
    twin: gap,
    sample: (draw) => ({
      ...sampleImage(draw),
      layout: sampleLayout(draw),
      outSlot: draw(3) === 0 ? NONE : 1,
    }),
  }),

  'gap-backward': defineOp<GapBackwardParams, Parameters<typeof gapBackward>[1]>({
    name: 'gap-backward',
    libs: ['fixed', 'activation', 'pool-div'],
    bindings: [
      read('dy', 'i32'),
      read('z', 'i32'),
      readWrite('maxes', 'u32'),
      write('gh', 'i32'),
      write('gz', 'i32'),
    ],
    shapes: (p) => ({
      dy: [p.batch * p.channels],
      z: [elementCount(p)],
      maxes: [slotsLength(p.gzSlot)],
      gh: [elementCount(p)],
      gz: [elementCount(p)],
    }),
    uniform: (p) => [...imageUniform(p), p.gzSlot],
    constants: (p) => ({ CHANNELS_LAST: layoutCode(p.layout), ACT: actCode(p.act) }),
    grid: (p) => grid1d(elementCount(p)),
    twin: gapBackward,
    sample: (draw) => ({
      ...sampleImage(draw),
      layout: sampleLayout(draw),
      act: sampleAct(draw),
      gzSlot: draw(3) === 0 ? NONE : 1,
    }),
  }),

  transpose: defineOp<TransposeParams, Parameters<typeof transpose>[1]>({
    name: 'transpose',
    libs: [],
    bindings: [read('x', 'i32'), write('y', 'i32')],
    shapes: (p) => ({ x: [p.batch * p.rows * p.cols], y: [p.batch * p.rows * p.cols] }),
    uniform: (p) => [p.batch, p.rows, p.cols],
    constants: (p) => ({ TILED: p.tiled ? 1 : 0 }),
    grid: (p) => {
      const y = Math.ceil(p.rows / 16) * p.batch;
      if (y > 65535) throw new Error(`transpose: ${y} row tiles exceed one dispatch dimension`);
      return [Math.ceil(p.cols / 16), y];
    },
    twin: transpose,
    sample: (draw) => ({
      batch: between(draw, 1, 3),
      rows: between(draw, 1, 40),
      cols: between(draw, 1, 40),
      tiled: draw(2) === 1,
    }),
  }),
} as const;

export type OpName = keyof typeof OPS;
// biome-ignore lint/suspicious/noExplicitAny: the list is heterogeneous; each entry is typed by defineOp.
export type AnyOpDef = OpDef<any, any>;

/** The list as an array, for the tests and backends that walk it. */
export const OP_LIST: readonly AnyOpDef[] = Object.values(OPS);
