import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS, TaskSpecSchema, taskIdOf } from '../protocol/spec.ts';
import { HashRng } from './rng.ts';
import {
  type Architecture,
  architectureHash,
  architectureOf,
  BATCHES,
  canonicalArchitecture,
  defineSpace,
  flopCount,
  LEARNING_RATES_Q16,
  MOMENTA_Q16,
  mutate,
  paramCount,
  parseArchitecture,
  sampleArchitecture,
  toTaskSpec,
  WEIGHT_DECAYS_Q24,
  WIDTHS,
} from './space.ts';

const space = defineSpace(784, 10);
const reference: Architecture = {
  hidden: [
    { units: 128, activation: 'relu', residual: false },
    { units: 128, activation: 'gelu', residual: true },
  ],
  learningRateQ16: 1024,
  momentumQ16: 57344,
  weightDecayQ24: 0,
  batch: 64,
};
const track = {
  name: 'mnist',
  sha256: `0x${'ab'.repeat(32)}`,
  inputs: 784,
  classes: 10,
  validation: 1000,
  splitSeed: 1,
};

describe('encoding', () => {
  it('is canonical: key order and object identity do not matter', () => {
    const reordered = JSON.parse(
      '{"batch":64,"weightDecayQ24":0,"momentumQ16":57344,"learningRateQ16":1024,"hidden":[' +
        '{"residual":false,"activation":"relu","units":128},{"activation":"gelu","residual":true,"units":128}]}',
    );
    expect(canonicalArchitecture(reordered)).toBe(canonicalArchitecture(reference));
    expect(canonicalArchitecture(reference)).toBe(
      '{"batch":64,"hidden":[{"activation":"relu","residual":false,"units":128},' +
        '{"activation":"gelu","residual":true,"units":128}],"learningRateQ16":1024,"momentumQ16":57344,"weightDecayQ24":0}',
    );
  });

  it('has a stable hash (a change here breaks every stored search)', () => {
    expect(architectureHash(reference)).toMatchInlineSnapshot(
      `"0xdbcf85d1cb7dede8048a4e983d676aae02d9f8bed3ce4e50b176c99161992270"`,
    );
  });

  it('hashes differ when anything differs', () => {
    const other = { ...reference, batch: 32 };
    expect(architectureHash(other)).not.toBe(architectureHash(reference));
  });

  it('rejects off-grid values and residuals between unequal widths', () => {
    expect(() => parseArchitecture({ ...reference, batch: 65 })).toThrow();
    expect(() =>
      parseArchitecture({ ...reference, hidden: [{ units: 128, activation: 'relu', residual: true }] }),
    ).toThrow(/residual/);
    expect(() =>
      parseArchitecture({
        ...reference,
        hidden: [
          { units: 64, activation: 'relu', residual: false },
          { units: 128, activation: 'relu', residual: true },
        ],
      }),
    ).toThrow(/residual/);
    expect(() => parseArchitecture({ ...reference, hidden: [] })).toThrow();
  });
});

describe('counts', () => {
  it('matches hand counts for 784-128-128-10', () => {
    expect(paramCount(space, reference)).toBe(784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10);
    expect(flopCount(space, reference)).toBe(2 * (784 * 128 + 128 * 128 + 128 * 10));
  });

  it('params = FLOPs/2 + biases for any sampled architecture', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (seed) => {
        const arch = sampleArchitecture(space, new HashRng(seed));
        const biases = arch.hidden.reduce((s, l) => s + l.units, 0) + 10;
        expect(paramCount(space, arch)).toBe(flopCount(space, arch) / 2 + biases);
      }),
    );
  });
});

describe('sampling', () => {
  it('draws valid architectures within the parameter budget, deterministically', () => {
    const small = defineSpace(784, 10, 60_000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (seed) => {
        const arch = sampleArchitecture(small, new HashRng(seed));
        expect(parseArchitecture(arch)).toEqual(arch);
        expect(paramCount(small, arch)).toBeLessThanOrEqual(60_000);
        expect(sampleArchitecture(small, new HashRng(seed))).toEqual(arch);
      }),
    );
  });

  it('refuses a budget below the smallest model', () => {
    expect(() => defineSpace(784, 10, 1000)).toThrow(/budget/);
  });
});

/** The number of grid steps between two values of an ordinal grid. */
const gridDistance = (grid: readonly number[], a: number, b: number) =>
  Math.abs(grid.indexOf(a) - grid.indexOf(b));

describe('mutation', () => {
  it('makes exactly one valid change within budget', () => {
    const small = defineSpace(784, 10, 120_000);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (s1, s2) => {
          const parent = sampleArchitecture(small, new HashRng(s1));
          const m = mutate(small, parent, new HashRng(s2));
          if (!m) return; // every one-change neighbour is over budget: allowed, rare
          const child = m.arch;
          expect(parseArchitecture(child)).toEqual(child);
          expect(paramCount(small, child)).toBeLessThanOrEqual(small.maxParams);
          expect(architectureHash(child)).not.toBe(architectureHash(parent));
          const hpDiffs =
            gridDistance(LEARNING_RATES_Q16, parent.learningRateQ16, child.learningRateQ16) +
            gridDistance(MOMENTA_Q16, parent.momentumQ16, child.momentumQ16) +
            gridDistance(WEIGHT_DECAYS_Q24, parent.weightDecayQ24, child.weightDecayQ24) +
            gridDistance(BATCHES, parent.batch, child.batch);
          const p = parent.hidden;
          const c = child.hidden;
          switch (m.kind) {
            case 'learning-rate':
            case 'momentum':
            case 'weight-decay':
            case 'batch':
              expect(hpDiffs).toBe(1);
              expect(c).toEqual(p);
              break;
            case 'width': {
              expect(hpDiffs).toBe(0);
              expect(c.length).toBe(p.length);
              const changed = c.flatMap((l, i) => (l.units !== p[i].units ? [i] : []));
              expect(changed).toEqual([m.layer]);
              expect(gridDistance(WIDTHS, p[m.layer!].units, c[m.layer!].units)).toBe(1);
              expect(c.map((l) => l.activation)).toEqual(p.map((l) => l.activation));
              break;
            }
            case 'activation': {
              expect(hpDiffs).toBe(0);
              const changed = c.flatMap((l, i) => (l.activation !== p[i].activation ? [i] : []));
              expect(changed).toEqual([m.layer]);
              expect(c.map((l) => l.units)).toEqual(p.map((l) => l.units));
              break;
            }
            case 'residual': {
              expect(hpDiffs).toBe(0);
              const changed = c.flatMap((l, i) => (l.residual !== p[i].residual ? [i] : []));
              expect(changed).toEqual([m.layer]);
              break;
            }
            case 'add-layer': {
              expect(hpDiffs).toBe(0);
              expect(c.length).toBe(p.length + 1);
              const without = c.filter((_, i) => i !== m.layer);
              expect(without.map((l) => [l.units, l.activation])).toEqual(
                p.map((l) => [l.units, l.activation]),
              );
              break;
            }
            case 'remove-layer': {
              expect(hpDiffs).toBe(0);
              expect(c.length).toBe(p.length - 1);
              const without = p.filter((_, i) => i !== m.layer);
              expect(c.map((l) => [l.units, l.activation])).toEqual(
                without.map((l) => [l.units, l.activation]),
              );
              break;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reaches every kind of change', () => {
    const kinds = new Set<string>();
    for (let s = 0; s < 300; s++) {
      const parent = sampleArchitecture(space, new HashRng(s));
      const m = mutate(space, { ...parent, hidden: [...parent.hidden] }, new HashRng(s + 1000));
      if (m) kinds.add(m.kind);
    }
    expect(kinds.size).toBe(9);
    expect(ACTIVATIONS.length).toBeGreaterThan(1);
  });

  it('honours the reject predicate (duplicate avoidance)', () => {
    const seen = new Set<string>();
    const m = mutate(space, reference, new HashRng(5), (a) => {
      const reject = seen.size < 10;
      seen.add(architectureHash(a));
      return reject;
    });
    expect(m).toBeDefined();
    expect(seen.size).toBeGreaterThan(1);
  });
});

describe('task spec', () => {
  it('maps an architecture and a budget to a valid spec and back', () => {
    const spec = toTaskSpec(track, reference, { steps: 300, seed: 9 });
    expect(TaskSpecSchema.parse(spec)).toEqual(spec);
    expect(spec.training).toMatchObject({ steps: 300, seed: 9, batch: 64, learningRateQ16: 1024 });
    expect(spec.checkpointEvery).toBe(19);
    expect(architectureOf(spec)).toEqual(reference);
    expect(taskIdOf(spec)).toBe(taskIdOf(toTaskSpec(track, reference, { steps: 300, seed: 9 })));
    expect(taskIdOf(spec)).not.toBe(taskIdOf(toTaskSpec(track, reference, { steps: 100, seed: 9 })));
  });
});
