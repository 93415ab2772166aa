/**
 * Search strategies behind one transport-free interface (issue 4).
 *
 * The coordinator (or `cambrian search`) drives a strategy with four calls:
 *
 *   const s = createStrategy({ kind: 'evolution', seed: 7, space, budget: 150, steps: 300 });
 *   const p = s.ask();                 // a Proposal to train, or undefined when the budget is spent
 *   s.tell(p.trialId, { valCorrect, valCount, valLoss });   // or s.tell(p.trialId, 'failed')
 *   s.best(); s.paretoFront(); s.trials();
 *   const json = s.toJSON();           // persist …
 *   const again = restoreStrategy(json);  // … and continue exactly where it stopped
 *
 * Rules the strategies keep:
 * - No transport, no engine, no clock: a strategy sees architectures and reported metrics only.
 * - Never blocking: `ask()` may be called any number of times before any `tell()`; it always answers
 *   from what is known now (a straggler never holds the search up). Results may arrive in any order.
 * - Deterministic for a seed: the same sequence of ask/tell calls gives the same proposals. All
 *   randomness comes from the integer hash RNG in ./rng.ts, whose state is part of the JSON.
 * - Resumable: `restoreStrategy(s.toJSON())` continues identically to `s` (same future proposals).
 * - `budget` bounds the number of proposals (trainings) a strategy hands out; promotions count.
 *
 * Strategies: `random` (the control), `evolution` (asynchronous regularized / aging evolution,
 * Real et al. 2019) and `asha` (asynchronous successive halving, Li et al. 2020, reduction factor 3,
 * fidelity = training steps). Accuracy is valCorrect / valCount, compared exactly by cross-multiplying.
 */
import type { Hex } from 'viem';
import { z } from 'zod';
import { CnnArchitectureSchema } from './cnn-space.ts';
import { HashRng } from './rng.ts';
import { ArchitectureSchema } from './space.ts';
import { ALL_MUTATIONS, type AnyArchitecture, type AnySpace, type SpaceOps, spaceOps } from './spaces.ts';

export const STRATEGIES = ['evolution', 'random', 'asha'] as const;
export type StrategyKind = (typeof STRATEGIES)[number];

/** One unit of work: train `arch` for `steps` steps and report its validation metrics. */
export interface Proposal {
  /** 0, 1, 2, … in the order proposals were handed out; the handle for `tell`. */
  trialId: number;
  /** An MLP or a conv architecture, by the space's family. */
  arch: AnyArchitecture;
  /** keccak256 of the architecture's canonical encoding. */
  archHash: Hex;
  /** Training steps (the fidelity). */
  steps: number;
  /** ASHA rung (0 for single-fidelity strategies). */
  rung: number;
  /** Evolution: the parent's trial id and the mutation applied; ASHA: the trial promoted. */
  parent?: number;
  mutation?: string;
  params: number;
  flops: number;
}

/** What a training reported. valLoss is the result's int64 decimal string (Q16 sum), used for ties. */
export interface Outcome {
  valCorrect: number;
  valCount: number;
  valLoss?: string;
}

export type TrialStatus = 'pending' | 'done' | 'failed';

export interface Trial extends Proposal {
  status: TrialStatus;
  outcome?: Outcome;
  /** Order in which results were told (aging evolution removes the oldest by this). */
  toldAt?: number;
}

export interface Strategy {
  readonly kind: StrategyKind;
  /** The next proposal, or undefined when the budget is spent. Never waits for results. */
  ask(): Proposal | undefined;
  /** Reports a proposal's result (or that it failed for good). Each trial is told at most once. */
  tell(trialId: number, outcome: Outcome | 'failed'): void;
  /** The best completed trial (ASHA: at the highest rung reached). */
  best(): Trial | undefined;
  /** Completed trials not dominated in (accuracy ↑, parameters ↓), sorted by parameters. */
  paretoFront(): Trial[];
  /** Every trial so far, in proposal order (copies). */
  trials(): Trial[];
  /** The best trials, best first (ASHA: each architecture at its highest completed rung). */
  leaderboard(limit?: number): Trial[];
  /** True when the budget is spent and every proposal has been told. */
  isFinished(): boolean;
  /** Pending proposals (handed out, not yet told). */
  pending(): Trial[];
  toJSON(): StrategyState;
}

const u32 = z.number().int().min(0).max(0xffff_ffff);
const positive = z.number().int().min(1);

export const StrategyConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('random'),
    seed: u32,
    budget: positive,
    steps: positive,
  }),
  z.strictObject({
    kind: z.literal('evolution'),
    seed: u32,
    budget: positive,
    steps: positive,
    /** Population size P (Real et al.: 100 on NAS-Bench-101; smaller suits small budgets). */
    populationSize: positive.default(20),
    /** Tournament sample size S (≤ P). */
    sampleSize: positive.default(5),
  }),
  z.strictObject({
    kind: z.literal('asha'),
    seed: u32,
    budget: positive,
    /** Bottom rung's steps r; rung k trains r·η^k steps, the top rung exactly maxSteps. */
    minSteps: positive,
    maxSteps: positive,
    eta: z.number().int().min(2).default(3),
  }),
]);

export type StrategyConfig = z.input<typeof StrategyConfigSchema>;
type ParsedConfig = z.output<typeof StrategyConfigSchema>;

const SpaceSchema = z.union([
  z.strictObject({
    family: z.literal('mlp').optional(),
    inputs: positive,
    classes: positive,
    maxParams: positive,
  }),
  z.strictObject({
    family: z.literal('cnn'),
    input: z.strictObject({ channels: positive, height: positive, width: positive }),
    classes: positive,
    maxParams: positive,
    maxMacs: positive,
  }),
]);

const TrialSchema = z.strictObject({
  trialId: z.number().int().min(0),
  arch: z.union([ArchitectureSchema, CnnArchitectureSchema]),
  archHash: z.string().regex(/^0x[0-9a-f]{64}$/),
  steps: positive,
  rung: z.number().int().min(0),
  parent: z.number().int().min(0).optional(),
  mutation: z.enum(ALL_MUTATIONS).optional(),
  params: positive,
  flops: positive,
  status: z.enum(['pending', 'done', 'failed']),
  outcome: z
    .strictObject({
      valCorrect: u32,
      valCount: positive,
      valLoss: z
        .string()
        .regex(/^-?\d+$/)
        .optional(),
    })
    .optional(),
  toldAt: z.number().int().min(0).optional(),
});

export const StrategyStateSchema = z.strictObject({
  v: z.literal(1),
  config: StrategyConfigSchema,
  space: SpaceSchema,
  rng: z.strictObject({ seed: u32, counter: z.number().int().min(0) }),
  tellCount: z.number().int().min(0),
  trials: z.array(TrialSchema),
});
export type StrategyState = z.output<typeof StrategyStateSchema>;

/** Exact accuracy order, then lower validation loss, fewer parameters, earlier trial. Negative: a better. */
export function compareTrials(a: Trial, b: Trial): number {
  const oa = a.outcome!;
  const ob = b.outcome!;
  const acc = ob.valCorrect * oa.valCount - oa.valCorrect * ob.valCount;
  if (acc !== 0) return acc;
  if (oa.valLoss !== undefined && ob.valLoss !== undefined) {
    const la = BigInt(oa.valLoss) * BigInt(ob.valCount);
    const lb = BigInt(ob.valLoss) * BigInt(oa.valCount);
    if (la !== lb) return la < lb ? -1 : 1;
  }
  return a.params - b.params || a.trialId - b.trialId;
}

export function accuracyOf(trial: Trial): number | undefined {
  return trial.outcome ? trial.outcome.valCorrect / trial.outcome.valCount : undefined;
}

/** Non-dominated trials in (accuracy ↑, params ↓), ascending in parameters (and accuracy). */
export function paretoFront(trials: Trial[]): Trial[] {
  const byParams = trials
    .filter((t) => t.status === 'done')
    .sort((a, b) => a.params - b.params || compareTrials(a, b));
  const front: Trial[] = [];
  for (const t of byParams) {
    const last = front[front.length - 1];
    if (!last || compareTrials(t, last) < 0) {
      const o = t.outcome!;
      const lo = last?.outcome;
      // Equal accuracy with more parameters is dominated even if its loss is lower.
      if (!lo || o.valCorrect * lo.valCount > lo.valCorrect * o.valCount) front.push(t);
    }
  }
  return front;
}

const clone = <T>(x: T): T => structuredClone(x);

abstract class BaseStrategy implements Strategy {
  abstract readonly kind: StrategyKind;
  protected readonly rng: HashRng;
  protected readonly list: Trial[];
  protected readonly seen = new Set<string>();
  protected tellCount: number;
  protected readonly ops: SpaceOps;

  constructor(
    protected readonly config: ParsedConfig,
    protected readonly space: AnySpace,
    restored?: StrategyState,
  ) {
    this.ops = spaceOps(space);
    this.rng = restored ? HashRng.restore(restored.rng) : new HashRng(config.seed);
    this.list = restored ? (clone(restored.trials) as Trial[]) : [];
    this.tellCount = restored?.tellCount ?? 0;
    for (const t of this.list) this.seen.add(t.archHash);
  }

  /** Chooses the next proposal's architecture and fidelity; budget is checked by the caller. */
  protected abstract propose(): Omit<Proposal, 'trialId' | 'archHash' | 'params' | 'flops'>;

  ask(): Proposal | undefined {
    if (this.list.length >= this.config.budget) return undefined;
    const p = this.propose();
    const proposal: Proposal = {
      ...p,
      trialId: this.list.length,
      archHash: this.ops.hash(p.arch),
      params: this.ops.params(p.arch),
      flops: this.ops.flops(p.arch),
    };
    this.seen.add(proposal.archHash);
    this.list.push({ ...clone(proposal), status: 'pending' });
    return proposal;
  }

  tell(trialId: number, outcome: Outcome | 'failed'): void {
    const trial = this.list[trialId];
    if (!trial) throw new Error(`unknown trial ${trialId}`);
    if (trial.status !== 'pending') throw new Error(`trial ${trialId} was already told (${trial.status})`);
    if (outcome === 'failed') {
      trial.status = 'failed';
    } else {
      const { valCorrect, valCount, valLoss } = outcome;
      if (!Number.isInteger(valCount) || valCount < 1 || !Number.isInteger(valCorrect) || valCorrect < 0) {
        throw new Error(`trial ${trialId}: bad outcome ${JSON.stringify(outcome)}`);
      }
      if (valCorrect > valCount) throw new Error(`trial ${trialId}: valCorrect > valCount`);
      trial.status = 'done';
      trial.outcome = valLoss === undefined ? { valCorrect, valCount } : { valCorrect, valCount, valLoss };
    }
    trial.toldAt = this.tellCount++;
  }

  protected done(): Trial[] {
    return this.list.filter((t) => t.status === 'done');
  }

  /** Candidates for "best" and the leaderboard: one per architecture, at its highest completed rung. */
  protected finalTrials(): Trial[] {
    const top = new Map<string, Trial>();
    for (const t of this.done()) {
      const cur = top.get(t.archHash);
      if (!cur || t.rung > cur.rung || (t.rung === cur.rung && compareTrials(t, cur) < 0))
        top.set(t.archHash, t);
    }
    return [...top.values()];
  }

  best(): Trial | undefined {
    const finals = this.finalTrials();
    if (finals.length === 0) return undefined;
    const maxRung = Math.max(...finals.map((t) => t.rung));
    return clone(finals.filter((t) => t.rung === maxRung).sort(compareTrials)[0]);
  }

  leaderboard(limit = Number.POSITIVE_INFINITY): Trial[] {
    return clone(
      this.finalTrials()
        .sort((a, b) => b.rung - a.rung || compareTrials(a, b))
        .slice(0, limit),
    );
  }

  paretoFront(): Trial[] {
    return clone(paretoFront(this.finalTrials()));
  }

  trials(): Trial[] {
    return clone(this.list);
  }

  pending(): Trial[] {
    return clone(this.list.filter((t) => t.status === 'pending'));
  }

  isFinished(): boolean {
    return this.list.length >= this.config.budget && this.list.every((t) => t.status !== 'pending');
  }

  toJSON(): StrategyState {
    return clone({
      v: 1 as const,
      config: this.config,
      space: { ...this.space },
      rng: this.rng.state(),
      tellCount: this.tellCount,
      trials: this.list,
    });
  }

  /** A random architecture not proposed before (gives up on uniqueness only if the space is exhausted). */
  protected freshRandom(): AnyArchitecture {
    let arch = this.ops.sample(this.rng);
    for (let i = 0; i < 256 && this.seen.has(this.ops.hash(arch)); i++) arch = this.ops.sample(this.rng);
    return arch;
  }
}

/** Random search: every proposal a fresh uniform draw (the control). */
class RandomSearch extends BaseStrategy {
  readonly kind = 'random' as const;

  protected propose() {
    const c = this.config as Extract<ParsedConfig, { kind: 'random' }>;
    return { arch: this.freshRandom(), steps: c.steps, rung: 0 };
  }
}

/**
 * Asynchronous regularized (aging) evolution. The first P proposals are random. After that, each
 * proposal samples S members of the population uniformly (without replacement), mutates the best
 * once, and avoids architectures already proposed. The population is the P most recently told
 * successful trials, so the oldest is removed as a new one arrives (aging). Until results arrive the
 * population may be small or empty: then it samples from what is there, or proposes random ones.
 */
class RegularizedEvolution extends BaseStrategy {
  readonly kind = 'evolution' as const;

  private get cfg() {
    return this.config as Extract<ParsedConfig, { kind: 'evolution' }>;
  }

  /** The P most recently told completed trials, oldest first. */
  population(): Trial[] {
    return this.done()
      .sort((a, b) => a.toldAt! - b.toldAt!)
      .slice(-this.cfg.populationSize);
  }

  protected propose() {
    const { steps, populationSize, sampleSize } = this.cfg;
    const population = this.population();
    if (this.list.length < populationSize || population.length === 0) {
      return { arch: this.freshRandom(), steps, rung: 0 };
    }
    const sample = this.rng.sampleIndices(population.length, sampleSize).map((i) => population[i]);
    const parent = sample.sort(compareTrials)[0];
    const child = this.ops.mutate(parent.arch, this.rng, (a) => this.seen.has(this.ops.hash(a)));
    if (!child) return { arch: this.freshRandom(), steps, rung: 0 };
    return { arch: child.arch, steps, rung: 0, parent: parent.trialId, mutation: child.kind };
  }
}

/** Rung k's training steps: minSteps·η^k, capped so the top rung is exactly maxSteps. */
export function ashaRungs(minSteps: number, maxSteps: number, eta: number): number[] {
  if (maxSteps < minSteps) throw new Error(`maxSteps ${maxSteps} < minSteps ${minSteps}`);
  const rungs = [minSteps];
  while (rungs[rungs.length - 1] * eta < maxSteps) rungs.push(rungs[rungs.length - 1] * eta);
  if (rungs[rungs.length - 1] !== maxSteps) rungs.push(maxSteps);
  return rungs;
}

/**
 * ASHA: asynchronous successive halving. On each ask, from the second-highest rung down, the best
 * completed trial of rung k that is in the top ⌊n_k/η⌋ of rung k's n_k results and not yet promoted
 * is promoted to rung k+1 (same architecture, η× the steps) at once; if none qualifies, a new random
 * architecture starts at the bottom rung. No rung ever waits for stragglers.
 */
class Asha extends BaseStrategy {
  readonly kind = 'asha' as const;

  private get cfg() {
    return this.config as Extract<ParsedConfig, { kind: 'asha' }>;
  }

  rungSteps(): number[] {
    return ashaRungs(this.cfg.minSteps, this.cfg.maxSteps, this.cfg.eta);
  }

  protected propose() {
    const rungs = this.rungSteps();
    const promoted = new Set(this.list.filter((t) => t.rung > 0).map((t) => t.parent!));
    for (let k = rungs.length - 2; k >= 0; k--) {
      const results = this.done()
        .filter((t) => t.rung === k)
        .sort(compareTrials);
      const top = results.slice(0, Math.floor(results.length / this.cfg.eta));
      const candidate = top.find((t) => !promoted.has(t.trialId));
      if (candidate)
        return { arch: candidate.arch, steps: rungs[k + 1], rung: k + 1, parent: candidate.trialId };
    }
    return { arch: this.freshRandom(), steps: rungs[0], rung: 0 };
  }
}

function build(config: ParsedConfig, space: AnySpace, restored?: StrategyState): Strategy {
  switch (config.kind) {
    case 'random':
      return new RandomSearch(config, space, restored);
    case 'evolution':
      if (config.sampleSize > config.populationSize)
        throw new Error('sampleSize must not exceed populationSize');
      return new RegularizedEvolution(config, space, restored);
    case 'asha':
      ashaRungs(config.minSteps, config.maxSteps, config.eta);
      return new Asha(config, space, restored);
  }
}

export function createStrategy(config: StrategyConfig, space: AnySpace): Strategy {
  return build(StrategyConfigSchema.parse(config), space);
}

/** Rebuilds a strategy from `toJSON()` output (validated); it continues exactly as the original would. */
export function restoreStrategy(state: unknown): Strategy {
  const parsed = StrategyStateSchema.parse(state);
  return build(parsed.config, parsed.space, parsed);
}
