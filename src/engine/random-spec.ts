/**
 * A simple random task-spec generator for tests and demos (the real NAS search space lives in
 * src/nas/). Deterministic in its seed: it draws from the hash RNG, not Math.random.
 */
import { DATASETS } from '../data/catalog.ts';
import {
  ACTIVATIONS,
  type HiddenLayer,
  type Layer,
  parseTaskSpec,
  type TaskSpec,
  type TaskSpecV2,
  TaskSpecV2Schema,
} from '../protocol/spec.ts';
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

/**
 * A random v2 (conv) spec: one or two conv stages (each a conv, optionally a residual conv, optionally
 * a max-pool), then gap or flatten, then up to one dense layer. `small`: blobs read as 1×8×8, narrow
 * layers and few steps (trains in well under a second on the CPU); otherwise MNIST at 1×28×28.
 */
export function randomSpecV2(seed: number, options: RandomSpecOptions = {}): TaskSpecV2 {
  const key = rngKey(seed, 0, SPEC_TENSOR + 1);
  let i = 0;
  const draw = (n: number) => rand(key, i++) % n;
  const pick = <T>(xs: readonly T[]): T => xs[draw(xs.length)];
  const small = options.small ?? false;
  const name = small ? 'blobs' : 'mnist';
  const side = small ? 8 : 28;
  const widths = small ? [1, 2, 3, 4, 6] : [4, 8, 16, 32];
  const layers: Layer[] = [];
  let channels = 1;
  let size = side;
  const stages = 1 + draw(2);
  for (let s = 0; s < stages && size >= 2; s++) {
    if (s === 0 && draw(6) === 0) {
      layers.push({ op: 'maxpool' }); // a pool straight on the pixels
      size = Math.floor(size / 2);
    }
    const stride = size >= 4 && draw(3) === 0 ? 2 : 1;
    const conv = {
      op: 'conv',
      channels: pick(widths),
      kernel: pick([1, 3, 5] as const),
      stride,
      activation: pick(ACTIVATIONS),
    } as const;
    layers.push({ ...conv, residual: false });
    channels = conv.channels;
    size = Math.floor((size + 2 * Math.floor(conv.kernel / 2) - conv.kernel) / stride) + 1;
    if (draw(2) === 0) {
      layers.push({
        op: 'conv',
        channels,
        kernel: pick([1, 3] as const),
        stride: 1,
        activation: pick(ACTIVATIONS),
        residual: true,
      });
    }
    if (size >= 2 && draw(2) === 0) {
      layers.push({ op: 'maxpool' });
      size = Math.floor(size / 2);
    }
  }
  const flatten = draw(2) === 0;
  layers.push({ op: flatten ? 'flatten' : 'gap' });
  let units = flatten ? channels * size * size : channels;
  if (draw(2) === 0) {
    const residual = draw(3) === 0;
    const width = residual ? units : pick(small ? [4, 8, 16] : [32, 64, 128]);
    layers.push({ op: 'dense', units: width, activation: pick(ACTIVATIONS), residual });
    units = width;
  }
  return TaskSpecV2Schema.parse({
    v: 2,
    dataset: { name, sha256: DATASETS[name].sha256 },
    split: { seed: rand(key, i++), validation: small ? 100 : 2000 },
    model: { input: { channels: 1, height: side, width: side }, classes: small ? 4 : 10, layers },
    training: {
      optimizer: 'sgd',
      batch: pick(small ? [4, 8, 16] : [32, 64]),
      steps: small ? 4 + draw(9) : 50 + draw(100),
      seed: rand(key, i++),
      learningRateQ16: pick([1311, 2621, 4915, 6554]),
      momentumQ16: pick([0, 52429, 58982]),
      weightDecayQ24: pick([0, 0, 1678, 8389]),
    },
    checkpointEvery: small ? 2 + draw(4) : 25,
  });
}
