/**
 * Every WASM twin (./ops.ts) against its TypeScript twin (../ops/*.ts), bit for bit: random params
 * (each op's `sample`, plus larger odd shapes for the GEMMs), random inputs of each binding's type —
 * zero-heavy, extreme (±127, −128, ±2^31) or uniform — and every output compared. Each case runs
 * twice: with the operands outside the engine's memory (copied in and out) and resident in it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConvForwardParams } from '../ops/conv-forward.ts';
import { type AnyOpDef, type BindingDef, OPS, type OpParams } from '../ops/index.ts';
import type { MatmulParams } from '../ops/matmul.ts';
import { rand, rngKey } from '../ops/rng.ts';
import { elementsOf } from '../program.ts';
import { WasmEngine, wasmKernelsAvailable } from './engine.ts';
import { WASM_OPS } from './ops.ts';

type Draw = (n: number) => number;
type Arr = Int8Array | Uint8Array | Int32Array | Uint32Array;
const ARRAYS = { i32: Int32Array, u32: Uint32Array, i8: Int8Array, u8: Uint8Array } as const;

function drawer(seed: number): Draw {
  const key = rngKey(seed, 0, 0x3a5);
  let i = 0;
  return (n) => rand(key, i++) % n;
}

/** 0: uniform, 1: mostly zeros (the zero-skipping paths), 2: extremes. */
function randomValues(binding: BindingDef<OpParams>, length: number, draw: Draw, style: number): Arr {
  const bits = () => rand(draw(2 ** 31), 0) | 0;
  const sparse = () => style === 1 && draw(4) !== 0;
  switch (binding.type) {
    case 'i8':
      return Int8Array.from({ length }, () =>
        sparse() ? 0 : style === 2 ? [-128, -127, 127, 0, 1, -1][draw(6)] : draw(256) - 128,
      );
    case 'u8':
      return Uint8Array.from({ length }, () => draw(256));
    case 'u32':
      if (binding.slot === 'state')
        return Uint32Array.from({ length }, (_, i) => (i === 1 ? draw(4) : bits()));
      // max-abs slots: any magnitude, so every quantisation shift occurs
      return Uint32Array.from({ length }, () => (bits() >>> 0) >>> draw(32));
    case 'i32': {
      const shift = draw(25);
      return Int32Array.from({ length }, () =>
        sparse()
          ? 0
          : style === 2
            ? [-0x80000000, 0x7fffffff, -1, 0, 1 << 30, -(1 << 30)][draw(6)] >> shift
            : bits() >> shift,
      );
    }
  }
}

function inputsFor(op: AnyOpDef, params: OpParams, draw: Draw, style: number): Record<string, Arr> {
  const shapes = op.shapes(params);
  const overrides = op.sampleInputs?.(params, draw) ?? {};
  const out: Record<string, Arr> = {};
  for (const binding of op.bindings) {
    const values = overrides[binding.slot];
    const n = elementsOf(shapes[binding.slot]);
    out[binding.slot] = values
      ? ARRAYS[binding.type].from(values)
      : randomValues(binding as BindingDef<OpParams>, n, draw, style);
  }
  return out;
}

const copy = (b: Record<string, Arr>) =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.slice()])) as Record<string, Arr>;

/** Runs op on the TS twin and the WASM twin (staged and resident); returns the slots that differ. */
function compare(op: AnyOpDef, params: OpParams, inputs: Record<string, Arr>): string[] {
  const expected = copy(inputs);
  op.twin(params, expected);
  const wasm = WASM_OPS[op.name];
  const failures: string[] = [];
  // staged: plain arrays, a growable engine
  const staged = copy(inputs);
  const ran = wasm.run(new WasmEngine(), params, staged);
  if (!ran) {
    if (!(op.name === 'matmul' && params.a === 'cols' && params.b === 'rows')) failures.push('did not run');
    return failures;
  }
  // resident: arrays allocated in a pinned engine sized for the call
  const bytes = Object.values(inputs).reduce((n, a) => n + a.byteLength + 16, 0);
  const engine = new WasmEngine(bytes + wasm.scratch(params) + 4096);
  const resident: Record<string, Arr> = {};
  for (const [slot, a] of Object.entries(inputs)) {
    const view = engine.alloc(a.constructor as Int32ArrayConstructor, a.length) as unknown as Arr;
    view.set(a);
    if (!engine.resident(view)) failures.push(`${slot} not resident`);
    resident[slot] = view;
  }
  if (!wasm.run(engine, params, resident)) failures.push('resident did not run');
  for (const binding of op.bindings) {
    const slot = binding.slot;
    for (const [how, got] of [
      ['staged', staged[slot]],
      ['resident', resident[slot]],
    ] as const) {
      const want = expected[slot];
      for (let i = 0; i < want.length; i++)
        if (got[i] !== want[i]) {
          failures.push(`${how} ${slot}[${i}]: ${got[i]} ≠ ${want[i]}`);
          break;
        }
    }
  }
  return failures;
}

const hasWasm = wasmKernelsAvailable();

describe.runIf(hasWasm)('WASM twins = TypeScript twins, bit for bit', () => {
  for (const name of Object.keys(WASM_OPS)) {
    const op = Object.values(OPS).find((o) => o.name === name) as AnyOpDef;
    it(`${name}: random params from the op's sampler`, () => {
      expect(op).toBeDefined();
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 0, max: 2 }), (seed, style) => {
          const draw = drawer(seed);
          const params = op.sample(draw);
          const failures = compare(op, params, inputsFor(op, params, draw, style));
          expect(failures, JSON.stringify(params)).toEqual([]);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('matmul: larger odd shapes, every layout the plans use', () => {
    const op = OPS.matmul as unknown as AnyOpDef;
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 70 }),
          n: fc.integer({ min: 1, max: 70 }),
          k: fc.integer({ min: 1, max: 150 }),
          layout: fc.constantFrom(['rows', 'cols'], ['cols', 'cols'], ['rows', 'rows']),
        }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 0, max: 2 }),
        ({ m, n, k, layout }, seed, style) => {
          const params: MatmulParams = { m, n, k, a: layout[0] as 'rows', b: layout[1] as 'rows' };
          const failures = compare(op, params, inputsFor(op, params, drawer(seed), style));
          expect(failures, JSON.stringify(params)).toEqual([]);
        },
      ),
      { numRuns: 80 },
    );
  });

  for (const name of ['conv-forward', 'conv-input-grad', 'conv-weight-grad'] as const) {
    it(`${name}: wider channels and batches (several GEMM blocks, odd tails)`, () => {
      const op = OPS[name] as unknown as AnyOpDef;
      fc.assert(
        fc.property(
          fc.record({
            batch: fc.integer({ min: 1, max: 4 }),
            channels: fc.integer({ min: 1, max: 19 }),
            height: fc.integer({ min: 1, max: 14 }),
            width: fc.integer({ min: 1, max: 14 }),
            n: fc.integer({ min: 1, max: 21 }),
          }),
          fc.integer({ min: 1, max: 2 ** 30 }),
          fc.integer({ min: 0, max: 2 }),
          (g, seed, style) => {
            const draw = drawer(seed);
            const base = op.sample(draw) as ConvForwardParams;
            const params = { ...base, ...g };
            if (base.residual) Object.assign(params, { n: g.channels, stride: 1, layout: 'hwc' });
            const failures = compare(op, params, inputsFor(op, params, draw, style));
            expect(failures, JSON.stringify(params)).toEqual([]);
          },
        ),
        { numRuns: 40 },
      );
    });
  }

  it('quantize: every shift, both roundings, extremes', () => {
    const op = OPS.quantize as unknown as AnyOpDef;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 31 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 2 ** 30 }),
        (rows, bits, stochastic, seed) => {
          const params = { rows, cols: 3, slot: 0, tensor: stochastic ? 0x301 : null, seed };
          const draw = drawer(seed);
          const inputs = inputsFor(op, params, draw, draw(3));
          (inputs.maxes as Uint32Array)[0] = bits === 0 ? 0 : 2 ** bits - 1;
          expect(compare(op, params, inputs)).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('the engine', () => {
  it('a pinned engine without room declines the call (the caller runs the TS twin)', () => {
    if (!hasWasm) return;
    const engine = new WasmEngine(64);
    engine.alloc(Int32Array, 4);
    const params: MatmulParams = { m: 64, n: 64, k: 512, a: 'rows', b: 'cols' };
    const b = { a: new Int8Array(64 * 512), b: new Int8Array(512 * 64), c: new Int32Array(64 * 64) };
    expect(WASM_OPS.matmul.run(engine, params, b)).toBe(false);
  });
});
