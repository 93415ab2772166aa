/**
 * Times each conv op kernel on one layer of a small MNIST CNN (batch 64, 16 → 32 channels, 14×14,
 * kernel 3, stride 1): the implicit-GEMM kernels the plans use (both tilings), and beside them the
 * explicit im2col/matmul/col2im path they replaced, on whatever adapter Dawn finds:
 *   npx tsx src/engine/webgpu/conv-ops-bench.ts [--batch 64] [--channels 16] [--out 32] [--side 14]
 * Each kernel is dispatched `repeats` times in one compute pass (one submit), best of three; the
 * figure is wall time per dispatch, so it includes a share of the submit overhead. Inputs are
 * random (the kernels' cost does not depend on the values). On SwiftShader the figures say nothing
 * about a GPU; they show the script works.
 */
import { parseArgs } from 'node:util';
import { createNodeGpuSession } from '../../gpu/node.ts';
import { chooseTiling } from '../ops/conv-tiling.ts';
import { patchShape } from '../ops/image.ts';
import { type AnyOpDef, OPS, type OpParams } from '../ops/index.ts';
import { elementsOf } from '../program.ts';
import { contextFromSession, type GpuContext } from './context.ts';
import { createGpuTensor, destroyGpuTensor, encodeOps, type GpuTensor, recordInvocation } from './program.ts';

interface Case {
  label: string;
  op: AnyOpDef;
  params: OpParams;
}

function layerCases(batch: number, channels: number, out: number, side: number): Case[] {
  const g = { batch, channels, height: side, width: side, kernel: 3, stride: 1 };
  const { rows: M, cols: K } = patchShape(g);
  const image = { batch, channels: out, height: side, width: side, layout: 'hwc' };
  const fwd = { xSlot: 0, wSlot: 1, outSlot: 2, act: 'relu', residual: false };
  const bwd = { eSlot: 0, wSlot: 1, gzSlot: 2, act: 'relu', residual: false };
  // The implicit-GEMM kernels with the tiling the plan picks, barrier-free (SwiftShader) and tiled (GPUs).
  const implicit = (tiled: boolean): Case[] => {
    const how = tiled ? 'tiled' : 'direct';
    const pixels = batch * side * side;
    return [
      {
        label: `conv-forward (${how})`,
        op: OPS['conv-forward'],
        params: { ...g, layout: 'hwc', n: out, ...chooseTiling(M, out, tiled), ...fwd },
      },
      {
        label: `conv-input-grad (${how})`,
        op: OPS['conv-input-grad'],
        params: { ...g, layout: 'hwc', n: out, ...chooseTiling(pixels, channels, tiled), ...bwd },
      },
      {
        label: `conv-weight-grad (${how})`,
        op: OPS['conv-weight-grad'],
        params: {
          ...g,
          layout: 'hwc',
          n: out,
          ...chooseTiling(K, out, tiled, true),
          xSlot: 0,
          splitWords: Math.max(16, Math.ceil(Math.ceil(M / 4) / (tiled ? 256 : 32))),
        },
      },
    ];
  };
  return [
    ...implicit(false),
    ...implicit(true),
    // the explicit path they replace: im2col's patch matrix and col2im's patch gradient in memory
    { label: 'im2col (+ RNE of x)', op: OPS.im2col, params: { ...g, layout: 'hwc', xSlot: 0 } },
    { label: 'x·W  (patches · w8)', op: OPS.matmul, params: { m: M, n: out, k: K, a: 'rows', b: 'cols' } },
    { label: 'Pᵀ·e (weight grad)', op: OPS.matmul, params: { m: K, n: out, k: M, a: 'cols', b: 'cols' } },
    { label: 'e·Wᵀ (patch grad)', op: OPS.matmul, params: { m: M, n: K, k: out, a: 'rows', b: 'rows' } },
    {
      label: 'col2im-backward',
      op: OPS['col2im-backward'],
      params: { ...g, layout: 'hwc', ...bwd },
    },
    { label: 'maxpool', op: OPS.maxpool, params: { ...image, outSlot: 0 } },
    { label: 'maxpool-backward', op: OPS['maxpool-backward'], params: { ...image, act: 'relu', gzSlot: 0 } },
    { label: 'gap', op: OPS.gap, params: { ...image, outSlot: 0 } },
    { label: 'gap-backward', op: OPS['gap-backward'], params: { ...image, act: 'relu', gzSlot: 0 } },
    {
      label: 'transpose (tiled)',
      op: OPS.transpose,
      params: { batch, rows: side * side, cols: out, tiled: true },
    },
    {
      label: 'transpose (plain)',
      op: OPS.transpose,
      params: { batch, rows: side * side, cols: out, tiled: false },
    },
  ];
}

/** Milliseconds per dispatch of one case: `repeats` dispatches in one pass, best of three. */
async function timeCase(ctx: GpuContext, c: Case, repeats: number): Promise<number> {
  const shapes = c.op.shapes(c.params);
  const tensors = new Map<string, GpuTensor>();
  for (const b of c.op.bindings) {
    const n = elementsOf(shapes[b.slot]);
    // max-abs slots small (so shifts are small); everything else pseudo-random bytes.
    const data =
      b.slot === 'maxes'
        ? new Uint32Array(n).fill(1000)
        : Uint8Array.from({ length: n }, (_, i) => (i * 97) & 0x7f);
    tensors.set(
      b.slot,
      createGpuTensor(ctx.device, { name: b.slot, type: b.type, shape: shapes[b.slot] }, data),
    );
  }
  const owned: GPUBuffer[] = [];
  const bind = Object.fromEntries(c.op.bindings.map((b) => [b.slot, b.slot]));
  const recorded = await recordInvocation(
    ctx,
    { op: c.op, label: c.label, params: c.params, bind },
    tensors,
    owned,
  );
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeOps(pass, Array(repeats).fill(recorded));
    pass.end();
    const start = performance.now();
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    best = Math.min(best, (performance.now() - start) / repeats);
  }
  for (const t of tensors.values()) destroyGpuTensor(t);
  for (const b of owned) b.destroy();
  return best;
}

async function main() {
  const { values } = parseArgs({
    options: {
      batch: { type: 'string', default: '64' },
      channels: { type: 'string', default: '16' },
      out: { type: 'string', default: '32' },
      side: { type: 'string', default: '14' },
      repeats: { type: 'string', default: '20' },
    },
  });
  const [batch, channels, out, side, repeats] = [
    values.batch,
    values.channels,
    values.out,
    values.side,
    values.repeats,
  ].map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${v}`);
    return n;
  });
  const session = await createNodeGpuSession();
  try {
    const ctx = await contextFromSession(session);
    const info = (ctx.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    console.log(
      `adapter: ${info ? `${info.vendor} ${info.architecture} ${info.description}`.trim() : 'unknown'}`,
    );
    console.log(
      `layer: batch ${batch}, ${channels} → ${out} channels, ${side}×${side}, kernel 3, stride 1\n`,
    );
    for (const c of layerCases(batch, channels, out, side)) {
      const ms = await timeCase(ctx, c, repeats);
      console.log(`${c.label.padEnd(28)} ${ms.toFixed(3).padStart(9)} ms`);
    }
  } finally {
    session.destroy();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
