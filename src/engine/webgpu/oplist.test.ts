/**
 * Every entry of the op list, twin against kernel, bit for bit on Dawn (SwiftShader without a GPU):
 * random params from the entry's `sample`, random inputs of each binding's type and shape (from its
 * shape rule), then every output binding compared. A new op entry is tested here with no new code.
 */
import { describe, expect, it } from 'vitest';
import { type AnyOpDef, type BindingDef, OP_LIST, type OpParams } from '../ops/index.ts';
import { rand, rngKey } from '../ops/rng.ts';
import { type BufferDecl, elementsOf, type Invocation } from '../program.ts';
import { readBack } from './buffers.ts';
import { packLines } from './matmul.ts';
import { createGpuTensor, destroyGpuTensor, encodeOps, type GpuTensor, recordInvocation } from './program.ts';
import { dawnContext, firstMismatch } from './test-harness.ts';

const ctx = dawnContext();
const CASES_PER_OP = 8;

type Draw = (n: number) => number;

function drawer(seed: number): Draw {
  const key = rngKey(seed, 0, 0x7e57);
  let i = 0;
  return (n) => rand(key, i++) % n;
}

/** Random values of a binding's type; i32 tensors get one random magnitude (8 to 32 bits) each. */
function randomValues(binding: BindingDef<OpParams>, length: number, draw: Draw): ArrayLike<number> {
  const bits = () => rand(draw(2 ** 31), 0);
  switch (binding.type) {
    case 'i8':
      return Int8Array.from({ length }, () => draw(255) - 127);
    case 'u8':
      return Uint8Array.from({ length }, () => draw(256));
    case 'u32':
      if (binding.slot === 'state')
        return Uint32Array.from({ length }, (_, i) => (i === 1 ? draw(4) : bits()));
      // max-abs slots: any magnitude, so every quantisation shift occurs
      return Uint32Array.from({ length }, () => bits() >>> draw(32));
    case 'i32': {
      const shift = draw(25);
      return Int32Array.from({ length }, () => bits() >> shift);
    }
  }
}

const ARRAYS = { i32: Int32Array, u32: Uint32Array, i8: Int8Array, u8: Uint8Array } as const;

async function readTensor(t: GpuTensor, layout: 'main' | 'rows' | 'cols', words: number) {
  return new Uint32Array(await readBack(ctx().device, t[layout]!, words * 4));
}

/** Runs one random case of `op` on both sides; returns the first mismatch per output, or null. */
async function runCase(op: AnyOpDef, seed: number) {
  const draw = drawer(seed);
  const params = op.sample(draw);
  const shapes = op.shapes(params);
  const overrides = op.sampleInputs?.(params, draw) ?? {};
  const cpu: Record<string, ArrayLike<number> & { slice(): unknown }> = {};
  const decls: BufferDecl[] = [];
  for (const binding of op.bindings) {
    const shape = shapes[binding.slot];
    const values = overrides[binding.slot] ?? randomValues(binding, elementsOf(shape), draw);
    cpu[binding.slot] = ARRAYS[binding.type].from(values);
    decls.push({ name: binding.slot, type: binding.type, shape });
  }
  const tensors = new Map<string, GpuTensor>(
    decls.map((d) => [d.name, createGpuTensor(ctx().device, d, cpu[d.name])]),
  );
  const bind = Object.fromEntries(op.bindings.map((b) => [b.slot, b.slot]));
  const inv: Invocation = { op, label: op.name, params, bind };
  const owned: GPUBuffer[] = [];
  const recorded = await recordInvocation(ctx(), inv, tensors, owned);
  const encoder = ctx().device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  encodeOps(pass, [recorded]);
  pass.end();
  ctx().device.queue.submit([encoder.finish()]);
  op.twin(params, cpu);

  const mismatches: Record<string, unknown> = {};
  for (const binding of op.bindings) {
    if (binding.access === 'read') continue;
    const t = tensors.get(binding.slot)!;
    const expected = cpu[binding.slot];
    if (binding.type === 'i8') {
      const [rows, cols] = shapes[binding.slot];
      const q = expected as Int8Array;
      const byRow = packLines(q, rows, cols, cols, 1);
      const byCol = packLines(q, cols, rows, 1, cols);
      mismatches[`${binding.slot} by rows`] = firstMismatch(await readTensor(t, 'rows', byRow.length), byRow);
      mismatches[`${binding.slot} by cols`] = firstMismatch(await readTensor(t, 'cols', byCol.length), byCol);
    } else {
      const words = await readTensor(t, 'main', expected.length);
      const got = binding.type === 'i32' ? new Int32Array(words.buffer) : words;
      mismatches[binding.slot] = firstMismatch(got, expected);
    }
  }
  for (const t of tensors.values()) destroyGpuTensor(t);
  for (const b of owned) b.destroy();
  return { params, mismatches };
}

describe('the op list: each twin against its kernel on random shapes, bit for bit', () => {
  it('has one entry per kernel name, each with an output', () => {
    const names = OP_LIST.map((op) => op.name);
    expect(new Set(names).size).toBe(names.length);
    for (const op of OP_LIST) expect(op.bindings.some((b) => b.access !== 'read')).toBe(true);
  });

  for (const op of OP_LIST) {
    it(`${op.name}: ops/${op.name}.ts = ops/${op.name}.wgsl`, async () => {
      for (let seed = 1; seed <= CASES_PER_OP; seed++) {
        const { params, mismatches } = await runCase(op, seed * 7919 + op.name.length);
        const failed = Object.entries(mismatches).filter(([, m]) => m !== null);
        expect(failed, JSON.stringify(params)).toEqual([]);
      }
    });
  }
});
