/**
 * The browser half of `cambrian bench engine`, loaded into headless Chromium by src/bench/engine.ts
 * (through Vite's dev server) and run on the page's main thread:
 *   - Cambrian's integer trainer on WebGPU (navigator.gpu) over the reference task's steps;
 *   - the same MLP (784-128-10 ReLU, batch, steps, learning rate, momentum, batches) in float32 with
 *     TensorFlow.js's WebGPU backend;
 *   - int8 matmul (Cambrian's kernel) beside TensorFlow.js's f32 matMul at n×n×n.
 * Browser-safe: no node: imports.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { decodeDataset } from '../data/format.ts';
import { trainingPlan } from '../engine/plan.ts';
import { hashI32 } from '../engine/train-cpu.ts';
import type { Dataset } from '../engine/types.ts';
import { contextFromSession, type GpuContext } from '../engine/webgpu/context.ts';
import { timeMatmulI8 } from '../engine/webgpu/matmul.ts';
import { GpuTrainer } from '../engine/webgpu/train.ts';
import { GpuSession } from '../gpu/device.ts';
import type { TaskSpec } from '../protocol/spec.ts';

export interface BrowserBenchConfig {
  spec: TaskSpec;
  datasetUrl: string;
  /** Steps to time (≤ spec.training.steps). */
  steps: number;
  matmulSizes: number[];
}

export interface TimedRun {
  steps: number;
  seconds: number;
  samplesPerSecond: number;
}

export interface BrowserBenchResult {
  userAgent: string;
  adapter: { vendor: string; architecture: string; description: string };
  packedDot: boolean;
  cambrian: TimedRun & { weightsHash: string; dispatchesPerStep: number };
  tfjs: TimedRun & { backend: string; finalLoss: number };
  matmul: { n: number; int8Gops: number; tfjsF32Gflops: number; int8Reps: number; tfjsReps: number }[];
}

const now = () => performance.now();

async function cambrianTraining(ctx: GpuContext, spec: TaskSpec, dataset: Dataset, steps: number) {
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

/** The same MLP in float32: He-uniform init, softmax cross-entropy, SGD with momentum. */
async function tfjsTraining(spec: TaskSpec, dataset: Dataset, steps: number) {
  await tf.setBackend('webgpu');
  await tf.ready();
  const plan = trainingPlan(spec, dataset);
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
  const widths = [features, ...spec.model.hidden.map((h) => h.units), classes];
  const params: tf.Variable[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const a = Math.sqrt(6 / widths[l]);
    params.push(tf.variable(tf.randomUniform([widths[l], widths[l + 1]], -a, a)));
    params.push(tf.variable(tf.zeros([widths[l + 1]])));
  }
  const optimizer = tf.train.momentum(
    spec.training.learningRateQ16 / 2 ** 16,
    spec.training.momentumQ16 / 2 ** 16,
  );
  const order = plan.batchRange(0, steps);
  const step = (t: number) =>
    optimizer.minimize(() => {
      const idx = tf.tensor1d(Int32Array.from(order.subarray(t * B, (t + 1) * B)), 'int32');
      let h: tf.Tensor = tf.gather(images, idx);
      for (let l = 0; l < params.length; l += 2) {
        h = tf.add(tf.matMul(h as tf.Tensor2D, params[l] as tf.Tensor2D), params[l + 1]);
        if (l + 2 < params.length) h = tf.relu(h);
      }
      return tf.losses.softmaxCrossEntropy(tf.gather(labels, idx), h) as tf.Scalar;
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
  for (const p of params) p.dispose();
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

export async function runBrowserBench(config: BrowserBenchConfig): Promise<BrowserBenchResult> {
  const gpu = navigator.gpu;
  if (!gpu) throw new Error('navigator.gpu is missing: start Chromium with --enable-unsafe-webgpu');
  const session = new GpuSession(gpu);
  const ctx = await contextFromSession(session);
  const report = await session.report();
  const bytes = new Uint8Array(await (await fetch(config.datasetUrl)).arrayBuffer());
  const dataset = decodeDataset(config.spec.dataset.name, bytes, config.spec.dataset.sha256);
  const cambrian = await cambrianTraining(ctx, config.spec, dataset, config.steps);
  const tfjs = await tfjsTraining(config.spec, dataset, config.steps);
  const matmul = [];
  for (const n of config.matmulSizes) matmul.push(await matmulComparison(ctx, n));
  session.destroy();
  return {
    userAgent: navigator.userAgent,
    adapter: { vendor: report.vendor, architecture: report.architecture, description: report.description },
    packedDot: ctx.packedDot,
    cambrian,
    tfjs,
    matmul,
  };
}
