import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashRng } from './rng.ts';
import { type Architecture, defineSpace, LEARNING_RATES_Q16, paramCount, WIDTHS } from './space.ts';
import type { AnyArchitecture } from './spaces.ts';
import {
  ashaRungs,
  createStrategy,
  type Outcome,
  type Proposal,
  paretoFront,
  restoreStrategy,
  type Strategy,
  type StrategyConfig,
  type Trial,
} from './strategy.ts';

const space = defineSpace(64, 4, 100_000);

/**
 * A synthetic, deterministic objective with structure a search can exploit: wider and deeper helps
 * up to a point, one learning rate is best, gelu/relu beat hardtanh. Longer training helps.
 */
function synthetic(anyArch: AnyArchitecture, steps: number): Outcome {
  const arch = anyArch as Architecture;
  let score = 0;
  for (const l of arch.hidden) {
    score += 40 - 6 * Math.abs(WIDTHS.indexOf(l.units as (typeof WIDTHS)[number]) - 6);
    score +=
      l.activation === 'gelu' ? 30 : l.activation === 'relu' ? 20 : l.activation === 'leaky_relu' ? 15 : 0;
  }
  score -= 30 * Math.abs(arch.hidden.length - 3);
  score -= 25 * Math.abs(LEARNING_RATES_Q16.indexOf(arch.learningRateQ16 as 1024) - 3);
  score += Math.round(20 * Math.log2(steps));
  const valCorrect = Math.max(0, Math.min(1000, 600 + score));
  return { valCorrect, valCount: 1000, valLoss: String(1000 - valCorrect) };
}

const configs: StrategyConfig[] = [
  { kind: 'random', seed: 3, budget: 40, steps: 100 },
  { kind: 'evolution', seed: 3, budget: 40, steps: 100, populationSize: 8, sampleSize: 3 },
  { kind: 'asha', seed: 3, budget: 40, minSteps: 10, maxSteps: 90 },
];

/**
 * Drives a strategy asynchronously: `script` bits pick, at each move, whether to ask (when under
 * `parallel` pending) or to tell a pending trial chosen by the script. Returns the proposals in order.
 */
function drive(s: Strategy, script: number[], parallel = 4): Proposal[] {
  const out: Proposal[] = [];
  const pending: Proposal[] = [];
  for (const move of script) {
    if (pending.length < parallel && move % 2 === 0) {
      const p = s.ask();
      if (p) {
        out.push(p);
        pending.push(p);
        continue;
      }
    }
    if (pending.length > 0) {
      const [p] = pending.splice(move % pending.length, 1);
      s.tell(p.trialId, p.trialId % 13 === 5 ? 'failed' : synthetic(p.arch, p.steps));
    }
  }
  return out;
}

const script = fc.array(fc.nat(1000), { minLength: 20, maxLength: 120 });

describe.each(configs)('$kind strategy', (config) => {
  it('is deterministic for a seed', () => {
    fc.assert(
      fc.property(script, (moves) => {
        const a = drive(createStrategy(config, space), moves);
        const b = drive(createStrategy(config, space), moves);
        expect(a).toEqual(b);
      }),
      { numRuns: 20 },
    );
  });

  it('depends on the seed', () => {
    const moves = Array.from({ length: 60 }, (_, i) => i * 7);
    const a = drive(createStrategy(config, space), moves);
    const b = drive(createStrategy({ ...config, seed: 4 }, space), moves);
    expect(a.map((p) => p.archHash)).not.toEqual(b.map((p) => p.archHash));
  });

  it('resumes from JSON with an identical continuation', () => {
    fc.assert(
      fc.property(script, script, (first, second) => {
        const whole = createStrategy(config, space);
        drive(whole, first, 1000);
        const saved = JSON.parse(JSON.stringify(whole.toJSON()));
        const resumed = restoreStrategy(saved);
        // Both continue with the same pending set: tell them in the same order, then go on.
        const finish = (s: Strategy) => {
          for (const t of s.pending()) s.tell(t.trialId, synthetic(t.arch, t.steps));
          return drive(s, second);
        };
        expect(finish(resumed)).toEqual(finish(whole));
        expect(resumed.toJSON()).toEqual(whole.toJSON());
        expect(resumed.best()).toEqual(whole.best());
      }),
      { numRuns: 20 },
    );
  });

  it('never blocks: the whole budget can be asked before any result', () => {
    const s = createStrategy(config, space);
    const proposals: Proposal[] = [];
    for (let p = s.ask(); p; p = s.ask()) proposals.push(p);
    expect(proposals).toHaveLength(config.budget);
    expect(s.ask()).toBeUndefined();
    expect(s.isFinished()).toBe(false);
    for (const p of [...proposals].reverse()) s.tell(p.trialId, synthetic(p.arch, p.steps));
    expect(s.isFinished()).toBe(true);
    expect(s.best()).toBeDefined();
  });

  it('proposes architectures within the budget, told once each', () => {
    const s = createStrategy(config, space);
    const p = s.ask()!;
    expect(paramCount(space, p.arch as Architecture)).toBeLessThanOrEqual(space.maxParams);
    expect(p.params).toBe(paramCount(space, p.arch as Architecture));
    s.tell(p.trialId, synthetic(p.arch, p.steps));
    expect(() => s.tell(p.trialId, synthetic(p.arch, p.steps))).toThrow(/already/);
    expect(() => s.tell(99, 'failed')).toThrow(/unknown/);
    expect(() => s.tell(s.ask()!.trialId, { valCorrect: 5, valCount: 4 })).toThrow();
  });
});

describe('random and evolution', () => {
  it('never propose the same architecture twice', () => {
    for (const config of configs.slice(0, 2)) {
      const s = createStrategy({ ...config, budget: 200 }, space);
      drive(
        s,
        Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 0),
      );
      const hashes = s.trials().map((t) => t.archHash);
      expect(new Set(hashes).size).toBe(hashes.length);
    }
  });
});

describe('regularized evolution', () => {
  it('starts random, then mutates a tournament winner from the P most recent results', () => {
    const s = createStrategy(
      { kind: 'evolution', seed: 1, budget: 60, steps: 100, populationSize: 8, sampleSize: 3 },
      space,
    );
    const moves = Array.from({ length: 400 }, (_, i) => (i * 40503) % 997);
    drive(s, moves, 3);
    const trials = s.trials();
    expect(trials.slice(0, 8).every((t) => t.parent === undefined)).toBe(true);
    const children = trials.filter((t) => t.parent !== undefined);
    expect(children.length).toBeGreaterThan(40);
    for (const child of children) {
      const parent = trials[child.parent!];
      expect(parent.status).toBe('done');
      expect(parent.toldAt).toBeDefined();
      expect(child.mutation).toBeDefined();
    }
  });

  it('ages: a parent is always among the P most recently told results, and wins its tournament', () => {
    const P = 6;
    const s = createStrategy(
      { kind: 'evolution', seed: 9, budget: 120, steps: 100, populationSize: P, sampleSize: 6 },
      space,
    );
    const pending: Proposal[] = [];
    for (let i = 0; i < 400; i++) {
      if (i % 3 !== 2) {
        const p = s.ask();
        if (!p) break;
        if (p.parent !== undefined) {
          const told = s
            .trials()
            .filter((t) => t.status === 'done' && t.trialId !== p.trialId)
            .sort((a, b) => a.toldAt! - b.toldAt!);
          const population = told.slice(-P);
          expect(population.map((t) => t.trialId)).toContain(p.parent);
          // S = P: the tournament is the whole population, so the parent is its best member.
          const best = [...population].sort(
            (a, b) =>
              b.outcome!.valCorrect - a.outcome!.valCorrect ||
              Number(a.outcome!.valLoss) - Number(b.outcome!.valLoss) ||
              a.params - b.params ||
              a.trialId - b.trialId,
          )[0];
          expect(p.parent).toBe(best.trialId);
        }
        pending.push(p);
      } else if (pending.length > 0) {
        const p = pending.splice((i * 7) % pending.length, 1)[0];
        s.tell(p.trialId, synthetic(p.arch, p.steps));
      }
    }
    expect(s.trials().filter((t) => t.parent !== undefined).length).toBeGreaterThan(30);
  });

  it('beats random search on a structured objective (mean best over 10 seeds)', () => {
    const bestOf = (config: StrategyConfig) => {
      const s = createStrategy(config, space);
      drive(
        s,
        Array.from({ length: 2000 }, (_, i) => (i * 7919) % 1009),
      );
      return s.best()!.outcome!.valCorrect;
    };
    let evo = 0;
    let rnd = 0;
    for (let seed = 0; seed < 10; seed++) {
      evo += bestOf({ kind: 'evolution', seed, budget: 150, steps: 100, populationSize: 20, sampleSize: 5 });
      rnd += bestOf({ kind: 'random', seed, budget: 150, steps: 100 });
    }
    expect(evo).toBeGreaterThan(rnd);
  });
});

describe('ASHA', () => {
  it('builds rungs with reduction factor 3', () => {
    expect(ashaRungs(10, 90, 3)).toEqual([10, 30, 90]);
    expect(ashaRungs(10, 100, 3)).toEqual([10, 30, 90, 100]);
    expect(ashaRungs(50, 50, 3)).toEqual([50]);
  });

  it('promotes the top third as soon as it qualifies', () => {
    const s = createStrategy({ kind: 'asha', seed: 2, budget: 100, minSteps: 10, maxSteps: 90 }, space);
    const first = [s.ask()!, s.ask()!, s.ask()!];
    expect(first.every((p) => p.rung === 0 && p.steps === 10)).toBe(true);
    const scores = [700, 900, 800];
    for (const [i, p] of first.entries()) s.tell(p.trialId, { valCorrect: scores[i], valCount: 1000 });
    const promoted = s.ask()!;
    expect(promoted).toMatchObject({ rung: 1, steps: 30, parent: first[1].trialId, arch: first[1].arch });
    // Nothing else qualifies (⌊3/3⌋ = 1 already promoted): a new bottom-rung trial.
    expect(s.ask()!).toMatchObject({ rung: 0, steps: 10 });
    expect(s.best()!.trialId).toBe(first[1].trialId);
    s.tell(promoted.trialId, { valCorrect: 950, valCount: 1000 });
    expect(s.best()!.trialId).toBe(promoted.trialId);
    expect(s.leaderboard()[0].trialId).toBe(promoted.trialId);
  });

  it('reaches the top rung while stragglers are still pending', () => {
    const s = createStrategy({ kind: 'asha', seed: 5, budget: 80, minSteps: 10, maxSteps: 90 }, space);
    const straggler = s.ask()!;
    drive(
      s,
      Array.from({ length: 400 }, (_, i) => (i * 104729) % 1013),
    );
    expect(s.trials()[straggler.trialId].status).toBe('pending');
    expect(s.trials().some((t) => t.rung === 2 && t.status === 'done')).toBe(true);
  });
});

describe('Pareto front', () => {
  const trial = (trialId: number, params: number, valCorrect: number): Trial => ({
    trialId,
    params,
    flops: 2 * params,
    arch: {} as Architecture,
    archHash: `0x${trialId.toString(16).padStart(64, '0')}`,
    steps: 1,
    rung: 0,
    status: 'done',
    outcome: { valCorrect, valCount: 100 },
  });

  it('keeps exactly the non-dominated trials', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 100 })), {
          maxLength: 40,
        }),
        (points) => {
          const trials = points.map(([p, c], i) => trial(i, p, c));
          const front = paretoFront(trials);
          const dominates = (a: Trial, b: Trial) =>
            a.params <= b.params &&
            a.outcome!.valCorrect >= b.outcome!.valCorrect &&
            (a.params < b.params || a.outcome!.valCorrect > b.outcome!.valCorrect);
          for (const f of front) expect(trials.some((t) => dominates(t, f))).toBe(false);
          for (const t of trials) {
            if (front.includes(t)) continue;
            expect(
              front.some(
                (f) =>
                  dominates(f, t) ||
                  (f.params === t.params && f.outcome!.valCorrect === t.outcome!.valCorrect),
              ),
            ).toBe(true);
          }
          for (let i = 1; i < front.length; i++) expect(front[i].params).toBeGreaterThan(front[i - 1].params);
        },
      ),
    );
  });
});

describe('rng', () => {
  it('draws unbiased indices and distinct samples', () => {
    const rng = new HashRng(11);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[rng.int(3)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(120);
    const sample = rng.sampleIndices(10, 5);
    expect(new Set(sample).size).toBe(5);
    expect(HashRng.restore(rng.state()).nextU32()).toBe(rng.nextU32());
  });
});
