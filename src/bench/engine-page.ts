/**
 * The browser half of `cambrian bench engine`, loaded into headless Chromium by src/bench/engine.ts
 * (through Vite's dev server) and run on the page's main thread:
 *   - Cambrian's integer trainer on WebGPU (navigator.gpu): the reference MLP and the reference CNN;
 *   - the same models (layers, batch, steps, learning rate, momentum) in float32 with TensorFlow.js's
 *     WebGL and WebGPU backends, one after the other in the same page;
 *   - int8 matmul (Cambrian's kernel) beside TensorFlow.js's f32 matMul at n×n×n (its WebGPU backend).
 * Browser-safe: no node: imports.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { decodeDataset } from '../data/format.ts';
import { trainingPlan } from '../engine/plan.ts';
import { hashI32 } from '../engine/train-cpu.ts';
import type { Dataset } from '../engine/types.ts';
import { contextFromSession, type GpuContext } from '../engine/webgpu/context.ts';
import { timeMatmulI8 } from '../engine/webgpu/matmul.ts';
import { GpuTrainer } from '../engine/webgpu/train.ts';
import { GpuSession } from '../gpu/device.ts';
import type { Activation, AnyTaskSpec, TaskSpec, TaskSpecV2 } from '../protocol/spec.ts';

/** TensorFlow.js backends compared, in the order they run. */
export const TFJS_BACKENDS = ['webgl', 'webgpu'] as const;
export type TfjsBackend = (typeof TFJS_BACKENDS)[number];

export interface BrowserBenchConfig {
  spec: TaskSpec;
  /** The reference CNN (a v2 spec), or null to skip the CNN part. */
  cnnSpec: TaskSpecV2 | null;
  datasetUrl: string;
  /** Steps to time (≤ spec.training.steps). */
  steps: number;
  /** CNN steps to time (≤ cnnSpec.training.steps). */
  cnnSteps: number;
  matmulSizes: number[];
}

export interface TimedRun {
  steps: number;
  seconds: number;
  samplesPerSecond: number;
}

export type CambrianRun = TimedRun & { weightsHash: string; dispatchesPerStep: number };
export type TfjsRun = TimedRun & { backend: string; finalLoss: number };
/** A run that could not happen here, with the reason (e.g. a backend this adapter cannot run). */
export interface Missing {
  error: string;
}

export interface BrowserBenchResult {
  userAgent: string;
  adapter: { vendor: string; architecture: string; description: string };
  packedDot: boolean;
  cambrian: CambrianRun;
  tfjs: Record<TfjsBackend, TfjsRun | Missing>;
  cnn: { cambrian: CambrianRun | Missing; tfjs: Record<TfjsBackend, TfjsRun | Missing> } | null;
  matmul: { n: number; int8Gops: number; tfjsF32Gflops: number; int8Reps: number; tfjsReps: number }[];
}

const now = () => performance.now();

async function cambrianTraining(
  ctx: GpuContext,
  spec: AnyTaskSpec,
  dataset: Dataset,
  steps: number,
): Promise<CambrianRun> {
  const trainer = await GpuTrainer.create(ctx, spec, dataset);
  try {
    await trainer.submitSteps(1); // warm-up: the adapter compiles pipelines on first use
    const start = now();
    await trainer.runPipelined(steps);
    const seconds = (now() - start) / 1000;
    const state = await trainer.state();
    const timed = steps - 1;
    return {
      steps: timed,
      seconds,
      samplesPerSecond: (timed * spec.training.batch) / seconds,
      weightsHash: hashI32(state.params),
      dispatchesPerStep: trainer.dispatchesPerStep,
    };
  } finally {
    trainer.destroy();
  }
}

/** Float32 layer functions of TensorFlow.js for the engine's activations (GELU: exact erf form). */
function tfActivation(a: Activation, z: tf.Tensor): tf.Tensor {
  switch (a) {
    case 'relu':
      return tf.relu(z);
    case 'leaky_relu':
      return tf.leakyRelu(z, 1 / 8);
    case 'hardtanh':
      return tf.clipByValue(z, -1, 1);
    case 'gelu':
      return tf.mul(tf.mul(z, 0.5), tf.add(1, tf.erf(tf.div(z, Math.SQRT2))));
  }
}

interface TfModel {
  params: tf.Variable[];
  /** Input rows [B, features] → logits [B, classes]. */
  forward(x: tf.Tensor2D): tf.Tensor2D;
}

/** He-uniform weights, zero biases. */
function tfParam(shape: number[], fanIn: number, params: tf.Variable[]): tf.Variable {
  const a = Math.sqrt(6 / fanIn);
  const v = tf.variable(tf.randomUniform(shape, -a, a));
  params.push(v);
  return v;
}

function tfBias(n: number, params: tf.Variable[]): tf.Variable {
  const v = tf.variable(tf.zeros([n]));
  params.push(v);
  return v;
}

/** The v1 MLP: dense layers with their activations and residuals, then the classifier. */
function tfMlp(spec: TaskSpec): TfModel {
  const params: tf.Variable[] = [];
  let width = spec.model.inputs;
  const layers = spec.model.hidden.map((h) => {
    const layer = { ...h, w: tfParam([width, h.units], width, params), b: tfBias(h.units, params) };
    width = h.units;
    return layer;
  });
  const w = tfParam([width, spec.model.classes], width, params);
  const b = tfBias(spec.model.classes, params);
  return {
    params,
    forward(x) {
      let h: tf.Tensor2D = x;
      for (const l of layers) {
        const z = tfActivation(l.activation, tf.add(tf.matMul(h, l.w as tf.Tensor2D), l.b)) as tf.Tensor2D;
        h = l.residual ? tf.add(z, h) : z;
      }
      return tf.add(tf.matMul(h, w as tf.Tensor2D), b);
    },
  };
}

/**
 * A v2 spec's layers in TensorFlow.js (NHWC, its native layout): conv with "same" padding ⌊k/2⌋
 * (for odd kernels TF's 'same' pads the same), 2×2 max-pool, global average pool, flatten, dense.
 * Flatten reads NHWC order here, the engine CHW: a permutation of the next layer's weights, the same
 * work.
 */
function tfCnn(spec: TaskSpecV2): TfModel {
  const params: tf.Variable[] = [];
  const { channels, height, width } = spec.model.input;
  type Step = (h: tf.Tensor) => tf.Tensor;
  const steps: Step[] = [];
  let c = channels;
  let hw = [height, width];
  let units = 0;
  for (const layer of spec.model.layers) {
    switch (layer.op) {
      case 'conv': {
        const fanIn = c * layer.kernel * layer.kernel;
        const w = tfParam([layer.kernel, layer.kernel, c, layer.channels], fanIn, params);
        const b = tfBias(layer.channels, params);
        steps.push((h) => {
          const z = tf.add(tf.conv2d(h as tf.Tensor4D, w as tf.Tensor4D, layer.stride, 'same'), b);
          const y = tfActivation(layer.activation, z);
          return layer.residual ? tf.add(y, h) : y;
        });
        c = layer.channels;
        hw = hw.map((n) => Math.floor((n - 1) / layer.stride) + 1);
        break;
      }
      case 'maxpool':
        steps.push((h) => tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid'));
        hw = hw.map((n) => Math.floor(n / 2));
        break;
      case 'gap':
        steps.push((h) => tf.mean(h, [1, 2]));
        units = c;
        break;
      case 'flatten':
        steps.push((h) => tf.reshape(h, [h.shape[0], -1]));
        units = c * hw[0] * hw[1];
        break;
      case 'dense': {
        const w = tfParam([units, layer.units], units, params);
        const b = tfBias(layer.units, params);
        steps.push((h) => {
          const y = tfActivation(layer.activation, tf.add(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D), b));
          return layer.residual ? tf.add(y, h) : y;
        });
        units = layer.units;
        break;
      }
    }
  }
  const w = tfParam([units, spec.model.classes], units, params);
  const b = tfBias(spec.model.classes, params);
  return {
    params,
    forward(x) {
      // The dataset's [C][H][W] rows as NHWC (a transpose; free for one channel).
      let h: tf.Tensor = tf.transpose(tf.reshape(x, [x.shape[0], channels, height, width]), [0, 2, 3, 1]);
      for (const step of steps) h = step(h);
      return tf.add(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D), b);
    },
  };
}

/**
 * Trains `model` in float32 on `backend`: softmax cross-entropy, SGD with momentum, the spec's
 * batch, learning rate and momentum; batches `order` (the engine's data order).
 */
async function tfjsTraining(
  backend: TfjsBackend,
  spec: TaskSpec | TaskSpecV2,
  makeModel: () => TfModel,
  dataset: Dataset,
  order: Uint32Array,
  steps: number,
): Promise<TfjsRun> {
  if (!(await tf.setBackend(backend)))
    throw new Error(`TensorFlow.js could not start its ${backend} backend`);
  await tf.ready();
  const { features, classes } = dataset;
  const B = spec.training.batch;
  const images = tf.tensor2d(
    Float32Array.from(dataset.pixels, (p) => p / 255),
    [dataset.count, features],
  );
  const labels = tf.cast(
    tf.oneHot(tf.tensor1d(Int32Array.from(dataset.labels), 'int32'), classes),
    'float32',
  );
  const model = makeModel();
  const optimizer = tf.train.momentum(
    spec.training.learningRateQ16 / 2 ** 16,
    spec.training.momentumQ16 / 2 ** 16,
  );
  const step = (t: number) =>
    optimizer.minimize(() => {
      const idx = tf.tensor1d(Int32Array.from(order.subarray(t * B, (t + 1) * B)), 'int32');
      const logits = model.forward(tf.gather(images, idx) as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(tf.gather(labels, idx), logits) as tf.Scalar;
    }, true) as tf.Scalar;
  const warm = step(0); // warm-up: shader compilation
  await warm.data();
  warm.dispose();
  const start = now();
  let loss: tf.Scalar | null = null;
  for (let t = 1; t < steps; t++) {
    loss?.dispose();
    loss = step(t);
  }
  const finalLoss = loss ? (await loss.data())[0] : Number.NaN;
  const seconds = (now() - start) / 1000;
  loss?.dispose();
  for (const p of model.params) p.dispose();
  images.dispose();
  labels.dispose();
  optimizer.dispose();
  const timed = steps - 1;
  return {
    steps: timed,
    seconds,
    samplesPerSecond: (timed * B) / seconds,
    backend: tf.getBackend(),
    finalLoss,
  };
}

/** Each TensorFlow.js backend in turn; a backend that fails is reported, not fatal. */
async function tfjsEachBackend(
  run: (backend: TfjsBackend) => Promise<TfjsRun>,
): Promise<Record<TfjsBackend, TfjsRun | Missing>> {
  const out = {} as Record<TfjsBackend, TfjsRun | Missing>;
  for (const backend of TFJS_BACKENDS)
    out[backend] = await run(backend).catch((err) => ({ error: message(err) }));
  return out;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** TensorFlow.js f32 matMul at n×n×n, timed like timeMatmulI8: warm-up, then reps, one read-back. */
async function timeTfjsMatmul(n: number, targetSeconds = 0.5) {
  const a = tf.randomUniform([n, n], -1, 1);
  const b = tf.randomUniform([n, n], -1, 1);
  const runReps = async (reps: number) => {
    const start = now();
    const outs: tf.Tensor[] = [];
    for (let r = 0; r < reps; r++) outs.push(tf.matMul(a, b));
    await outs[outs.length - 1].data();
    const seconds = (now() - start) / 1000;
    for (const t of outs) t.dispose();
    return seconds;
  };
  const once = await runReps(1);
  const reps = Math.max(1, Math.min(50, Math.round(targetSeconds / once)));
  const seconds = (await runReps(reps)) / reps;
  a.dispose();
  b.dispose();
  return { gflops: (2 * n ** 3) / seconds / 1e9, reps };
}

async function matmulComparison(ctx: GpuContext, n: number) {
  const int8 = await timeMatmulI8(ctx, n);
  const f32 = await timeTfjsMatmul(n);
  return { n, int8Gops: int8.gops, tfjsF32Gflops: f32.gflops, int8Reps: int8.reps, tfjsReps: f32.reps };
}

/** The CNN on Cambrian and on each TensorFlow.js backend, over the engine's batches in its order. */
async function cnnPart(ctx: GpuContext, spec: TaskSpecV2, dataset: Dataset, steps: number) {
  const cambrian = await cambrianTraining(ctx, spec, dataset, steps).catch(
    (err): Missing => ({ error: message(err) }),
  );
  const order = trainingPlan(spec, dataset).batchRange(0, steps);
  const tfjs = await tfjsEachBackend((b) => tfjsTraining(b, spec, () => tfCnn(spec), dataset, order, steps));
  return { cambrian, tfjs };
}

export async function runBrowserBench(config: BrowserBenchConfig): Promise<BrowserBenchResult> {
  const gpu = navigator.gpu;
  if (!gpu) throw new Error('navigator.gpu is missing: start Chromium with --enable-unsafe-webgpu');
  const session = new GpuSession(gpu);
  const ctx = await contextFromSession(session);
  const report = await session.report();
  const bytes = new Uint8Array(await (await fetch(config.datasetUrl)).arrayBuffer());
  const { spec, steps } = config;
  const dataset = decodeDataset(spec.dataset.name, bytes, spec.dataset.sha256);
  const cambrian = await cambrianTraining(ctx, spec, dataset, steps);
  const order = trainingPlan(spec, dataset).batchRange(0, steps);
  const tfjs = await tfjsEachBackend((b) => tfjsTraining(b, spec, () => tfMlp(spec), dataset, order, steps));
  const cnn = config.cnnSpec ? await cnnPart(ctx, config.cnnSpec, dataset, config.cnnSteps) : null;
  await tf.setBackend('webgpu');
  const matmul = [];
  for (const n of config.matmulSizes) matmul.push(await matmulComparison(ctx, n));
  session.destroy();
  return {
    userAgent: navigator.userAgent,
    adapter: { vendor: report.vendor, architecture: report.architecture, description: report.description },
    packedDot: ctx.packedDot,
    cambrian,
    tfjs,
    cnn,
    matmul,
  };
}
