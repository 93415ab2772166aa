/**
 * A float32 CPU trainer of the same architecture, initial weights, data order, batches and
 * hyper-parameters as the integer engine, for comparison only (it decides no bit of any result).
 * Inputs are the same operand values ((p >> 1) / 128); GELU is the exact erf form.
 */
import type { Activation, TaskSpec } from '../protocol/spec.ts';
import { initialParams, modelPlan, trainingPlan } from './plan.ts';
import type { Dataset } from './types.ts';

export interface FloatReport {
  valCorrect: number;
  valCount: number;
  /** Mean validation cross-entropy (nats). */
  valLoss: number;
  /** Mean batch loss of each step. */
  losses: number[];
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7): plenty for a comparison trainer.
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}

function act(a: Activation, z: number): number {
  switch (a) {
    case 'relu':
      return Math.max(z, 0);
    case 'leaky_relu':
      return z >= 0 ? z : z / 8;
    case 'hardtanh':
      return Math.max(-1, Math.min(1, z));
    case 'gelu':
      return 0.5 * z * (1 + erf(z / Math.SQRT2));
  }
}

function actGrad(a: Activation, z: number): number {
  switch (a) {
    case 'relu':
      return z > 0 ? 1 : 0;
    case 'leaky_relu':
      return z > 0 ? 1 : 1 / 8;
    case 'hardtanh':
      return Math.abs(z) < 1 ? 1 : 0;
    case 'gelu':
      return 0.5 * (1 + erf(z / Math.SQRT2)) + (z * Math.exp(-0.5 * z * z)) / Math.sqrt(2 * Math.PI);
  }
}

export function trainFloatReference(spec: TaskSpec, dataset: Dataset): FloatReport {
  const plan = trainingPlan(spec, dataset);
  const { layers } = plan.model;
  const B = spec.training.batch;
  const C = spec.model.classes;
  const F = dataset.features;
  const p0 = initialParams(spec, plan.model);
  const w = new Float32Array(p0.length);
  for (let i = 0; i < w.length; i++) w[i] = p0[i] / 2 ** 24;
  const v = new Float32Array(w.length);
  const g = new Float32Array(w.length);
  const lr = spec.training.learningRateQ16 / 2 ** 16;
  const mom = spec.training.momentumQ16 / 2 ** 16;
  const wd = spec.training.weightDecayQ24 / 2 ** 24;
  // Per-layer activations: hs[0] = input, hs[l+1] = output of layer l; zs[l] = pre-activation.
  const hs = [new Float32Array(B * F), ...layers.map((l) => new Float32Array(B * l.N))];
  const zs = layers.map((l) => new Float32Array(B * l.N));
  const gs = layers.map((l) => new Float32Array(B * l.N)); // dL/dz
  const labels = new Uint8Array(B);

  const forward = (indices: ArrayLike<number>, rows: number) => {
    for (let b = 0; b < rows; b++) {
      for (let k = 0; k < F; k++) hs[0][b * F + k] = (dataset.pixels[indices[b] * F + k] >> 1) / 128;
      labels[b] = dataset.labels[indices[b]];
    }
    layers.forEach((l, li) => {
      const x = hs[li];
      const z = zs[li];
      for (let b = 0; b < rows; b++) {
        for (let n = 0; n < l.N; n++) z[b * l.N + n] = w[l.bOffset + n];
        for (let k = 0; k < l.K; k++) {
          const xv = x[b * l.K + k];
          if (xv === 0) continue;
          for (let n = 0; n < l.N; n++) z[b * l.N + n] += xv * w[l.wOffset + k * l.N + n];
        }
      }
      const out = hs[li + 1];
      for (let i = 0; i < rows * l.N; i++) {
        out[i] = l.activation ? act(l.activation, z[i]) + (l.residual ? x[i] : 0) : z[i];
      }
    });
    return zs[layers.length - 1];
  };

  /** Softmax cross-entropy of `rows` logits; writes dL/dz of the mean loss when `grad`. */
  const xent = (z: Float32Array, rows: number, grad: Float32Array | null) => {
    let loss = 0;
    let correct = 0;
    for (let b = 0; b < rows; b++) {
      let arg = 0;
      for (let j = 1; j < C; j++) if (z[b * C + j] > z[b * C + arg]) arg = j;
      if (arg === labels[b]) correct++;
      let S = 0;
      for (let j = 0; j < C; j++) S += Math.exp(z[b * C + j] - z[b * C + arg]);
      loss += Math.log(S) - (z[b * C + labels[b]] - z[b * C + arg]);
      if (grad) {
        for (let j = 0; j < C; j++) {
          const p = Math.exp(z[b * C + j] - z[b * C + arg]) / S;
          grad[b * C + j] = (p - (j === labels[b] ? 1 : 0)) / rows;
        }
      }
    }
    return { loss, correct };
  };

  const losses: number[] = [];
  const batch = new Uint32Array(B);
  for (let t = 0; t < spec.training.steps; t++) {
    const logits = forward(plan.batchIndices(t, batch), B);
    losses.push(xent(logits, B, gs[layers.length - 1]).loss / B);
    g.fill(0);
    let above: Float32Array | null = null; // dL/d(output of the layer being processed)
    for (let li = layers.length - 1; li >= 0; li--) {
      const l = layers[li];
      const gz = gs[li];
      const x = hs[li];
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < l.K; k++) {
          const xv = x[b * l.K + k];
          if (xv === 0) continue;
          for (let n = 0; n < l.N; n++) g[l.wOffset + k * l.N + n] += xv * gz[b * l.N + n];
        }
        for (let n = 0; n < l.N; n++) g[l.bOffset + n] += gz[b * l.N + n];
      }
      if (li === 0) break;
      const gin = new Float32Array(B * l.K);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < l.K; k++) {
          let s = 0;
          for (let n = 0; n < l.N; n++) s += gz[b * l.N + n] * w[l.wOffset + k * l.N + n];
          gin[b * l.K + k] = s + (l.residual && above ? above[b * l.K + k] : 0);
        }
      }
      const prev = layers[li - 1];
      for (let i = 0; i < B * l.K; i++) gs[li - 1][i] = gin[i] * actGrad(prev.activation!, zs[li - 1][i]);
      above = gin;
    }
    for (let i = 0; i < w.length; i++) {
      v[i] = mom * v[i] + g[i] + wd * w[i];
      w[i] -= lr * v[i];
    }
  }

  let valCorrect = 0;
  let valLoss = 0;
  const { validation } = plan;
  for (let start = 0; start < validation.length; start += B) {
    const rows = Math.min(B, validation.length - start);
    const r = xent(forward(validation.subarray(start, start + rows), rows), rows, null);
    valCorrect += r.correct;
    valLoss += r.loss;
  }
  return { valCorrect, valCount: validation.length, valLoss: valLoss / validation.length, losses };
}

/**
 * Mean cross-entropy of a batch under float64 parameters in canonical order (value units, not Q24):
 * the function whose finite differences check the integer backward pass.
 */
export function floatBatchLoss(
  spec: TaskSpec,
  dataset: Dataset,
  params: Float64Array,
  indices: ArrayLike<number>,
): number {
  const { layers } = modelPlan(spec);
  const F = dataset.features;
  let total = 0;
  for (let b = 0; b < indices.length; b++) {
    let x = Array.from(dataset.pixels.subarray(indices[b] * F, (indices[b] + 1) * F), (p) => (p >> 1) / 128);
    for (const l of layers) {
      const z = new Array<number>(l.N);
      for (let n = 0; n < l.N; n++) {
        let s = params[l.bOffset + n];
        for (let k = 0; k < l.K; k++) s += x[k] * params[l.wOffset + k * l.N + n];
        z[n] = s;
      }
      const a = l.activation;
      x = a ? z.map((v, n) => act(a, v) + (l.residual ? x[n] : 0)) : z;
    }
    const m = Math.max(...x);
    const S = x.reduce((s, v) => s + Math.exp(v - m), 0);
    total += Math.log(S) - (x[dataset.labels[indices[b]]] - m);
  }
  return total / indices.length;
}
