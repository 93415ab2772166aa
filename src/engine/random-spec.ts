/**
 * A simple random task-spec generator for tests and demos (the real NAS search space lives in
 * src/nas/). Deterministic in its seed: it draws from the hash RNG, not Math.random.
 */
import { DATASETS } from '../data/catalog.ts';
import { ACTIVATIONS, type HiddenLayer, parseTaskSpec, type TaskSpec } from '../protocol/spec.ts';
import { rand, rngKey } from './ops/rng.ts';

const SPEC_TENSOR = 0x7e5;

export interface RandomSpecOptions {
  /** The fast generated dataset (blobs), a tiny net and few steps: trains in milliseconds. */
  small?: boolean;
}

export function randomSpec(seed: number, options: RandomSpecOptions = {}): TaskSpec {
  const key = rngKey(seed, 0, SPEC_TENSOR);
  let i = 0;
  const draw = (n: number) => rand(key, i++) % n;
  const pick = <T>(xs: readonly T[]): T => xs[draw(xs.length)];
  const small = options.small ?? false;
  const name = small ? 'blobs' : 'mnist';
  const inputs = small ? 64 : 784;
  const widths = small ? [8, 16, 32, 64] : [32, 64, 128, 256];
  const hidden: HiddenLayer[] = [];
  let width = inputs;
  const depth = 1 + draw(small ? 2 : 3);
  for (let l = 0; l < depth; l++) {
    const units = l > 0 && draw(2) === 0 ? width : pick(widths);
    hidden.push({ units, activation: pick(ACTIVATIONS), residual: units === width && draw(2) === 0 });
    width = units;
  }
  const steps = small ? 8 + draw(25) : 50 + draw(326);
  return parseTaskSpec({
    v: 1,
    dataset: { name, sha256: DATASETS[name].sha256 },
    split: { seed: rand(key, i++), validation: small ? 128 : 2000 },
    model: { inputs, classes: small ? 4 : 10, hidden },
    training: {
      optimizer: 'sgd',
      batch: pick(small ? [8, 16, 32] : [32, 64, 128]),
      steps,
      seed: rand(key, i++),
      learningRateQ16: pick([1311, 2621, 4915, 6554]),
      momentumQ16: pick([0, 52429, 58982]),
      weightDecayQ24: pick([0, 0, 1678, 8389]),
    },
    checkpointEvery: small ? 4 + draw(8) : 25 * (1 + draw(4)),
  });
}
