import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { layerShapes, TaskSpecV2Schema, taskIdOf } from '../protocol/spec.ts';
import {
  CHANNELS,
  CNN_MUTATIONS,
  type CnnArchitecture,
  canonicalCnnArchitecture,
  cnnArchitectureHash,
  cnnArchitectureOf,
  cnnCounts,
  cnnLayers,
  DENSE_WIDTHS,
  defineCnnSpace,
  describeCnnArchitecture,
  mutateCnn,
  parseCnnArchitecture,
  parseCnnCode,
  sampleCnnArchitecture,
  toCnnTaskSpec,
} from './cnn-space.ts';
import { HashRng } from './rng.ts';
import { BATCHES, LEARNING_RATES_Q16, MOMENTA_Q16, WEIGHT_DECAYS_Q24 } from './space.ts';
import { specCounts } from './spaces.ts';
import { createStrategy, restoreStrategy } from './strategy.ts';
import { spaceOf, TRACKS } from './tracks.ts';

const track = TRACKS['mnist-cnn'];
const space = defineCnnSpace(track.input, track.classes, track.maxParams, track.maxMacs);
const seed = fc.integer({ min: 0, max: 0xffff_ffff });

/** conv 3×3 8 → max-pool → conv 3×3 16 → max-pool → flatten → classifier. */
const lenetish: CnnArchitecture = {
  stages: [
    { convs: [{ channels: 8, kernel: 3, activation: 'relu', residual: false }], downsample: 'maxpool' },
    { convs: [{ channels: 16, kernel: 3, activation: 'relu', residual: false }], downsample: 'maxpool' },
  ],
  head: 'flatten',
  dense: [],
  learningRateQ16: 4096,
  momentumQ16: 57344,
  weightDecayQ24: 0,
  batch: 64,
};

describe('conv space: encoding', () => {
  it('is canonical and has a stable hash', () => {
    const reordered = Object.fromEntries(Object.entries(lenetish).reverse()) as unknown as CnnArchitecture;
    expect(Object.keys(reordered)).not.toEqual(Object.keys(lenetish));
    expect(canonicalCnnArchitecture(reordered)).toBe(canonicalCnnArchitecture(lenetish));
    expect(canonicalCnnArchitecture(lenetish).startsWith('{"batch":64,"dense":[],"head":"flatten"')).toBe(
      true,
    );
    expect(cnnArchitectureHash(lenetish)).toMatchInlineSnapshot(
      `"0x0ca2181f7eae8004aa4f1f7aae4560359b82a4be1ffd0e1c2b1d0559150da2a2"`,
    );
  });

  it('writes a short code that parses back', () => {
    expect(describeCnnArchitecture(lenetish)).toBe('c8k3r.mp c16k3r.mp flat lr=1/16 m=0.875 wd=0 b=64');
    fc.assert(
      fc.property(seed, (s) => {
        const arch = sampleCnnArchitecture(space, new HashRng(s));
        expect(parseCnnCode(describeCnnArchitecture(arch))).toEqual(arch);
      }),
      { numRuns: 200 },
    );
    expect(() => parseCnnCode('c8k3r.mp gap lr=1/16 m=0 wd=0')).toThrow(/missing b/);
    expect(() => parseCnnCode('c9k3r.mp gap lr=1/16 m=0 wd=0 b=64')).toThrow(/channels/);
  });

  it('rejects off-grid values, a none stage in the middle and impossible residuals', () => {
    expect(() => parseCnnArchitecture({ ...lenetish, batch: 48 })).toThrow(/batch/);
    const none = structuredClone(lenetish);
    none.stages[0].downsample = 'none';
    expect(() => parseCnnArchitecture(none)).toThrow(/only the last stage/);
    const residual = structuredClone(lenetish);
    residual.stages[1].convs[0].residual = true; // 8 → 16 channels
    expect(() => parseCnnArchitecture(residual)).toThrow(/residual/);
    const strided = structuredClone(lenetish);
    strided.stages[1] = {
      convs: [{ channels: 8, kernel: 3, activation: 'relu', residual: true }],
      downsample: 'stride',
    };
    expect(() => parseCnnArchitecture(strided)).toThrow(/stride 1/);
  });
});

describe('conv space: counts', () => {
  it('matches hand counts for the LeNet-like net', () => {
    // conv1: 1·9·8 + 8 = 80 params, 28·28·8·9 = 56448 MACs; conv2: 8·9·16 + 16 = 1168, 14·14·16·72 = 225792;
    // classifier: 16·7·7 = 784 → 10: 7850 params, 7840 MACs.
    expect(cnnCounts(space, lenetish)).toEqual({
      params: 80 + 1168 + 7850,
      macs: 56448 + 225792 + 7840,
      maxActivations: 8 * 28 * 28,
    });
  });

  it('agree with the spec layer shapes for any sample', () => {
    fc.assert(
      fc.property(seed, (s) => {
        const arch = sampleCnnArchitecture(space, new HashRng(s));
        const spec = toCnnTaskSpec(track, arch, { steps: 10, seed: 1 });
        // Recount from the v2 shape rule: conv K = Cin·k², MACs = output elements · K.
        const shapes = layerShapes(spec.model);
        let prev = { kind: 'image' as const, ...track.input } as (typeof shapes)[number];
        let params = 0;
        let macs = 0;
        spec.model.layers.forEach((layer, i) => {
          const out = shapes[i];
          if (layer.op === 'conv' && prev.kind === 'image' && out.kind === 'image') {
            const K = prev.channels * layer.kernel ** 2;
            params += K * layer.channels + layer.channels;
            macs += out.channels * out.height * out.width * K;
          } else if (layer.op === 'dense' && prev.kind === 'flat') {
            params += prev.units * layer.units + layer.units;
            macs += prev.units * layer.units;
          }
          prev = out;
        });
        const last = prev.kind === 'flat' ? prev.units : 0;
        params += last * track.classes + track.classes;
        macs += last * track.classes;
        expect(cnnCounts(space, arch)).toMatchObject({ params, macs });
        expect(specCounts(spec)).toEqual({ params, flops: 2 * macs });
      }),
      { numRuns: 200 },
    );
  });
});

describe('conv space: sampling', () => {
  it('draws valid v2 specs within budget, deterministically', () => {
    fc.assert(
      fc.property(seed, (s) => {
        const arch = sampleCnnArchitecture(space, new HashRng(s));
        expect(parseCnnArchitecture(arch)).toEqual(arch);
        const c = cnnCounts(space, arch);
        expect(c.params).toBeLessThanOrEqual(space.maxParams);
        expect(c.macs).toBeLessThanOrEqual(space.maxMacs);
        const spec = toCnnTaskSpec(track, arch, { steps: 50, seed: 3 });
        expect(TaskSpecV2Schema.parse(spec)).toEqual(spec);
        expect(cnnArchitectureOf(spec)).toEqual(arch);
        expect(sampleCnnArchitecture(space, new HashRng(s))).toEqual(arch);
      }),
      { numRuns: 300 },
    );
  });

  it('covers the space: stages, downsamples, heads, residuals', () => {
    const seen = new Set<string>();
    for (let s = 0; s < 300; s++) {
      const arch = sampleCnnArchitecture(space, new HashRng(s));
      seen.add(`stages${arch.stages.length}`);
      seen.add(arch.head);
      for (const st of arch.stages) seen.add(st.downsample);
      if (arch.stages.some((st) => st.convs.some((c) => c.residual))) seen.add('residual');
    }
    expect([...seen].sort()).toEqual(
      ['flatten', 'gap', 'maxpool', 'none', 'residual', 'stages1', 'stages2', 'stages3', 'stride'].sort(),
    );
  });

  it('refuses a budget below the smallest model', () => {
    expect(() => defineCnnSpace(track.input, 10, 50)).toThrow(/smallest model/);
  });
});

const grid = (values: readonly number[], a: number, b: number) =>
  Math.abs(values.indexOf(a) - values.indexOf(b));

/** Every conv as a flat list of [stage, channels, kernel, activation, residual]. */
const convList = (a: CnnArchitecture) =>
  a.stages.flatMap((s, si) => s.convs.map((c) => [si, c.channels, c.kernel, c.activation, c.residual]));

describe('conv space: mutation', () => {
  it('makes exactly one valid change within budget', () => {
    fc.assert(
      fc.property(seed, seed, (s1, s2) => {
        const parent = sampleCnnArchitecture(space, new HashRng(s1));
        const m = mutateCnn(space, parent, new HashRng(s2));
        if (!m) return;
        const child = m.arch;
        expect(parseCnnArchitecture(child)).toEqual(child);
        expect(cnnCounts(space, child).params).toBeLessThanOrEqual(space.maxParams);
        expect(cnnArchitectureHash(child)).not.toBe(cnnArchitectureHash(parent));
        toCnnTaskSpec(track, child, { steps: 5, seed: 1 });
        const hp =
          grid(LEARNING_RATES_Q16, parent.learningRateQ16, child.learningRateQ16) +
          grid(MOMENTA_Q16, parent.momentumQ16, child.momentumQ16) +
          grid(WEIGHT_DECAYS_Q24, parent.weightDecayQ24, child.weightDecayQ24) +
          grid(BATCHES, parent.batch, child.batch);
        const sameConvsExceptResidual = (a: CnnArchitecture, b: CnnArchitecture) =>
          expect(convList(a).map((c) => c.slice(0, 4))).toEqual(convList(b).map((c) => c.slice(0, 4)));
        const p = parent;
        const c = child;
        const convChanges = () => {
          const pc = convList(p);
          const cc = convList(c);
          return pc.flatMap((x, i) => (x.slice(0, 4).some((v, j) => v !== cc[i][j]) ? [i] : []));
        };
        switch (m.kind) {
          case 'learning-rate':
          case 'momentum':
          case 'weight-decay':
          case 'batch':
            expect(hp).toBe(1);
            expect({ ...c, ...hpOf(p) }).toEqual(p);
            break;
          case 'channels':
          case 'kernel':
          case 'conv-activation': {
            expect(hp).toBe(0);
            expect(c.stages.map((s) => s.convs.length)).toEqual(p.stages.map((s) => s.convs.length));
            expect(convChanges()).toHaveLength(1);
            const i = convChanges()[0];
            const field = { channels: 1, kernel: 2, 'conv-activation': 3 }[m.kind];
            expect(convList(p)[i].filter((_v, j) => j !== field && j !== 4)).toEqual(
              convList(c)[i].filter((_v, j) => j !== field && j !== 4),
            );
            if (m.kind === 'channels')
              expect(grid(CHANNELS, convList(p)[i][1] as number, convList(c)[i][1] as number)).toBe(1);
            expect({ ...c, stages: p.stages }).toEqual(p);
            break;
          }
          case 'residual': {
            sameConvsExceptResidual(p, c);
            const flips = convList(p).filter((x, i) => x[4] !== convList(c)[i][4]);
            expect(flips).toHaveLength(1);
            expect({ ...c, stages: p.stages }).toEqual(p);
            break;
          }
          case 'add-conv':
          case 'remove-conv': {
            const grow = m.kind === 'add-conv' ? 1 : -1;
            expect(convList(c).length).toBe(convList(p).length + grow);
            expect(c.stages.map((s) => s.downsample)).toEqual(p.stages.map((s) => s.downsample));
            const [longer, shorter] = grow > 0 ? [c, p] : [p, c];
            const rest = structuredClone(longer);
            rest.stages[m.stage!].convs.splice(m.index!, 1);
            sameConvsExceptResidual(rest, shorter);
            expect({ ...c, stages: p.stages }).toEqual(p);
            break;
          }
          case 'downsample':
            sameConvsExceptResidual(p, c);
            expect(c.stages.filter((s, i) => s.downsample !== p.stages[i].downsample)).toHaveLength(1);
            expect({ ...c, stages: p.stages }).toEqual(p);
            break;
          case 'add-stage':
          case 'remove-stage': {
            const grow = m.kind === 'add-stage' ? 1 : -1;
            expect(c.stages.length).toBe(p.stages.length + grow);
            const [longer, shorter] = grow > 0 ? [c, p] : [p, c];
            const rest = structuredClone(longer);
            rest.stages.splice(m.stage!, 1);
            sameConvsExceptResidual(rest, shorter);
            expect({ ...c, stages: p.stages }).toEqual(p);
            break;
          }
          case 'head':
            expect(c.head).not.toBe(p.head);
            expect({ ...c, head: p.head }).toEqual(p);
            break;
          case 'dense-width':
            expect(grid(DENSE_WIDTHS, p.dense[m.index!].units, c.dense[m.index!].units)).toBe(1);
            expect(c.dense.filter((d, i) => d.units !== p.dense[i].units)).toHaveLength(1);
            expect({ ...c, dense: p.dense }).toEqual(p);
            break;
          case 'dense-activation':
            expect(c.dense.filter((d, i) => d.activation !== p.dense[i].activation)).toHaveLength(1);
            expect({ ...c, dense: p.dense }).toEqual(p);
            break;
          case 'add-dense':
          case 'remove-dense': {
            const [longer, shorter] = m.kind === 'add-dense' ? [c, p] : [p, c];
            expect(longer.dense.filter((_, i) => i !== m.index)).toEqual(shorter.dense);
            expect({ ...c, dense: p.dense }).toEqual(p);
            break;
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('reaches every kind of change', () => {
    const kinds = new Set<string>();
    for (let s = 0; s < 600; s++) {
      const m = mutateCnn(space, sampleCnnArchitecture(space, new HashRng(s)), new HashRng(s + 7777));
      if (m) kinds.add(m.kind);
    }
    expect([...kinds].sort()).toEqual([...CNN_MUTATIONS].sort());
  });
});

const hpOf = (a: CnnArchitecture) => ({
  learningRateQ16: a.learningRateQ16,
  momentumQ16: a.momentumQ16,
  weightDecayQ24: a.weightDecayQ24,
  batch: a.batch,
});

describe('conv space: strategies and specs', () => {
  it.each(['random', 'evolution', 'asha'] as const)(
    '%s drives the conv space and resumes from JSON',
    (kind) => {
      const config =
        kind === 'asha'
          ? { kind, seed: 2, budget: 30, minSteps: 10, maxSteps: 90 }
          : kind === 'evolution'
            ? { kind, seed: 2, budget: 30, steps: 50, populationSize: 6, sampleSize: 3 }
            : { kind, seed: 2, budget: 30, steps: 50 };
      const s = createStrategy(config, spaceOf(track));
      // A synthetic objective: more MACs up to the budget scores higher.
      const score = (a: CnnArchitecture) => Math.min(1000, Math.floor(cnnCounts(space, a).macs / 1500));
      for (let i = 0; i < 15; i++) {
        const p = s.ask()!;
        s.tell(p.trialId, { valCorrect: score(p.arch as CnnArchitecture), valCount: 1000 });
      }
      const resumed = restoreStrategy(JSON.parse(JSON.stringify(s.toJSON())));
      const next = [s.ask(), resumed.ask()];
      expect(next[0]).toEqual(next[1]);
      for (const t of s.trials()) {
        const arch = parseCnnArchitecture(t.arch);
        expect(t.params).toBe(cnnCounts(space, arch).params);
        expect(t.flops).toBe(2 * cnnCounts(space, arch).macs);
      }
      if (kind === 'evolution') expect(s.trials().some((t) => t.mutation !== undefined)).toBe(true);
    },
  );

  it('maps an architecture to a v2 spec and back; layers follow the stages', () => {
    const spec = toCnnTaskSpec(track, lenetish, { steps: 300, seed: 9 });
    expect(spec.model.layers).toEqual(cnnLayers(lenetish));
    expect(spec.model.layers.map((l) => l.op)).toEqual(['conv', 'maxpool', 'conv', 'maxpool', 'flatten']);
    expect(spec).toMatchObject({ v: 2, dataset: { name: 'mnist' }, training: { steps: 300, seed: 9 } });
    expect(cnnArchitectureOf(spec)).toEqual(lenetish);
    expect(taskIdOf(spec)).not.toBe(taskIdOf(toCnnTaskSpec(track, lenetish, { steps: 100, seed: 9 })));
    const strided = toCnnTaskSpec(track, parseCnnCode('c8k3r-c16k3r.s2 c16k3r+ gap lr=1/16 m=0 wd=0 b=32'), {
      steps: 1,
      seed: 1,
    });
    expect(strided.model.layers.map((l) => (l.op === 'conv' ? `conv/${l.stride}` : l.op))).toEqual([
      'conv/1',
      'conv/2',
      'conv/1',
      'gap',
    ]);
  });
});
