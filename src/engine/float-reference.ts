/**
 * A float32 CPU trainer of the same architecture, initial weights, data order, batches and
 * hyper-parameters as the integer engine, for comparison only (it decides no bit of any result).
 * Inputs are the same operand values ((p >> 1) / 128); GELU is the exact erf form.
 */
import {
  type Activation,
  type AnyTaskSpec,
  isV2,
  layerShapes,
  type Shape,
  type TaskSpec,
  type TaskSpecV2,
} from '../protocol/spec.ts';
import { initialParams, type ModelPlan, modelPlan, trainingPlan } from './plan.ts';
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

/** Trains a v1 (MLP) or v2 (conv) spec in float32; see trainFloatMlp and trainFloatCnn. */
export function trainFloatReference(spec: AnyTaskSpec, dataset: Dataset): FloatReport {
  return isV2(spec) ? trainFloatCnn(spec, dataset) : trainFloatMlp(spec, dataset);
}

function trainFloatMlp(spec: TaskSpec, dataset: Dataset): FloatReport {
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

// ------------------------------------------------------------------------------ v2: conv nets

/** One layer of the float conv model; weight layers hold their offsets in the flat vector. */
type FloatLayer =
  | {
      op: 'conv';
      inC: number;
      inH: number;
      inW: number;
      outC: number;
      outH: number;
      outW: number;
      kernel: number;
      stride: number;
      pad: number;
      activation: Activation;
      residual: boolean;
      K: number;
      wOffset: number;
      bOffset: number;
    }
  | { op: 'maxpool'; C: number; inH: number; inW: number; outH: number; outW: number }
  | { op: 'gap'; C: number; HW: number }
  | { op: 'flatten' }
  | {
      op: 'dense';
      K: number;
      N: number;
      activation: Activation | null;
      residual: boolean;
      wOffset: number;
      bOffset: number;
    };

const sizeOf = (s: Shape) => (s.kind === 'image' ? s.channels * s.height * s.width : s.units);

/**
 * The float layers of a v2 model and its parameter layout: weight layers in order (each conv, each
 * dense, then the classifier), each W [K][N] then b [N]; conv K = inChannels·k·k indexed
 * (ic·k + ky)·k + kx, N = output channel (the shared engine layout, docs/SPEC.md).
 */
function floatCnnLayers(spec: TaskSpecV2): { layers: FloatLayer[]; weights: ModelPlan } {
  const layers: FloatLayer[] = [];
  // The engine's weight layers, in canonical order: this trainer consumes them in the same order.
  const weights = modelPlan(spec);
  let next = 0;
  const addWeights = (K: number, N: number, _activation: Activation | null, _residual: boolean) => {
    const plan = weights.layers[next++];
    if (plan.K !== K || plan.N !== N)
      throw new Error(`weight layer ${plan.index}: engine ${plan.K}×${plan.N}, float ${K}×${N}`);
    return { wOffset: plan.wOffset, bOffset: plan.bOffset };
  };
  let shape: Shape = { kind: 'image', ...spec.model.input };
  const shapes = layerShapes(spec.model);
  spec.model.layers.forEach((layer, i) => {
    const out = shapes[i];
    if (layer.op === 'conv' && shape.kind === 'image' && out.kind === 'image') {
      const K = shape.channels * layer.kernel * layer.kernel;
      layers.push({
        op: 'conv',
        inC: shape.channels,
        inH: shape.height,
        inW: shape.width,
        outC: out.channels,
        outH: out.height,
        outW: out.width,
        kernel: layer.kernel,
        stride: layer.stride,
        pad: Math.floor(layer.kernel / 2),
        activation: layer.activation,
        residual: layer.residual,
        K,
        ...addWeights(K, layer.channels, layer.activation, layer.residual),
      });
    } else if (layer.op === 'maxpool' && shape.kind === 'image' && out.kind === 'image') {
      layers.push({
        op: 'maxpool',
        C: shape.channels,
        inH: shape.height,
        inW: shape.width,
        outH: out.height,
        outW: out.width,
      });
    } else if (layer.op === 'gap' && shape.kind === 'image') {
      layers.push({ op: 'gap', C: shape.channels, HW: shape.height * shape.width });
    } else if (layer.op === 'flatten') {
      layers.push({ op: 'flatten' });
    } else if (layer.op === 'dense' && shape.kind === 'flat') {
      layers.push({
        op: 'dense',
        K: shape.units,
        N: layer.units,
        activation: layer.activation,
        residual: layer.residual,
        ...addWeights(shape.units, layer.units, layer.activation, layer.residual),
      });
    }
    shape = out;
  });
  const K = sizeOf(shape);
  const N = spec.model.classes;
  layers.push({ op: 'dense', K, N, activation: null, residual: false, ...addWeights(K, N, null, false) });
  return { layers, weights };
}

/** The patches of one example, transposed: col[k][p] for k = (ic·kernel + ky)·kernel + kx, output pixel p. */
function im2col(
  l: Extract<FloatLayer, { op: 'conv' }>,
  x: Float32Array,
  xOff: number,
  col: Float32Array,
): void {
  const { inC, inH, inW, outH, outW, kernel, stride, pad } = l;
  const P = outH * outW;
  for (let ic = 0; ic < inC; ic++) {
    for (let ky = 0; ky < kernel; ky++) {
      for (let kx = 0; kx < kernel; kx++) {
        const row = ((ic * kernel + ky) * kernel + kx) * P;
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * stride - pad + ky;
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * stride - pad + kx;
            const inside = iy >= 0 && iy < inH && ix >= 0 && ix < inW;
            col[row + oy * outW + ox] = inside ? x[xOff + (ic * inH + iy) * inW + ix] : 0;
          }
        }
      }
    }
  }
}

/** Adds dcol ([K][P]) back onto the input gradient (the transpose of im2col). */
function col2imAdd(
  l: Extract<FloatLayer, { op: 'conv' }>,
  dcol: Float32Array,
  dx: Float32Array,
  xOff: number,
): void {
  const { inC, inH, inW, outH, outW, kernel, stride, pad } = l;
  const P = outH * outW;
  for (let ic = 0; ic < inC; ic++) {
    for (let ky = 0; ky < kernel; ky++) {
      for (let kx = 0; kx < kernel; kx++) {
        const row = ((ic * kernel + ky) * kernel + kx) * P;
        for (let oy = 0; oy < outH; oy++) {
          const iy = oy * stride - pad + ky;
          if (iy < 0 || iy >= inH) continue;
          for (let ox = 0; ox < outW; ox++) {
            const ix = ox * stride - pad + kx;
            if (ix < 0 || ix >= inW) continue;
            dx[xOff + (ic * inH + iy) * inW + ix] += dcol[row + oy * outW + ox];
          }
        }
      }
    }
  }
}

/**
 * The float32 comparison trainer for v2 (conv) specs: the engine's architecture, initial weights
 * (the same Q24 integers, divided by 2^24), inputs ((p >> 1) / 128), split, batch order, steps and SGD
 * with momentum and L2 decay (v = μ·v + g + λ·w; w −= η·v). Max-pool routes the gradient to the first
 * maximum of each window; average pooling divides by H·W.
 */
export function trainFloatCnn(
  spec: TaskSpecV2,
  dataset: Dataset,
  options: { validate?: boolean } = {},
): FloatReport {
  const net = floatCnn(spec, dataset);
  const { w, g, forward, backward, xent, order } = net;
  const B = spec.training.batch;
  const v = new Float32Array(w.length);
  const lr = spec.training.learningRateQ16 / 2 ** 16;
  const mom = spec.training.momentumQ16 / 2 ** 16;
  const wd = spec.training.weightDecayQ24 / 2 ** 24;
  const losses: number[] = [];
  const batch = new Uint32Array(B);
  for (let t = 0; t < spec.training.steps; t++) {
    const logits = forward(order.batchIndices(t, batch), B);
    losses.push(xent(logits, B, net.logitGrad).loss / B);
    g.fill(0);
    backward(B);
    for (let i = 0; i < w.length; i++) {
      v[i] = mom * v[i] + g[i] + wd * w[i];
      w[i] -= lr * v[i];
    }
  }
  let valCorrect = 0;
  let valLoss = 0;
  // validate: false skips validation (valCount 0) for callers that only want the losses.
  const validation = options.validate === false ? order.validation.subarray(0, 0) : order.validation;
  for (let start = 0; start < validation.length; start += B) {
    const rows = Math.min(B, validation.length - start);
    const r = xent(forward(validation.subarray(start, start + rows), rows), rows, null);
    valCorrect += r.correct;
    valLoss += r.loss;
  }
  return {
    valCorrect,
    valCount: validation.length,
    valLoss: validation.length > 0 ? valLoss / validation.length : 0,
    losses,
  };
}

/**
 * Mean cross-entropy of a batch of a v2 model under the given parameters (canonical order, value
 * units) and its gradient: what finite differences check the float conv trainer against.
 */
export function floatCnnLossAndGradient(
  spec: TaskSpecV2,
  dataset: Dataset,
  params: ArrayLike<number>,
  indices: Uint32Array,
): { loss: number; grad: Float32Array } {
  const net = floatCnn(spec, dataset, indices.length);
  net.w.set(params);
  const rows = indices.length;
  const loss = net.xent(net.forward(indices, rows), rows, net.logitGrad).loss / rows;
  net.g.fill(0);
  net.backward(rows);
  return { loss, grad: net.g.slice() };
}

/** The float conv model's buffers and passes for batches of up to `B` examples. */
function floatCnn(spec: TaskSpecV2, dataset: Dataset, B = spec.training.batch) {
  const { layers, weights } = floatCnnLayers(spec);
  const order = trainingPlan(spec, dataset);
  const C = spec.model.classes;
  const F = dataset.features;
  const p0 = initialParams(spec, weights);
  const w = Float32Array.from(p0, (q) => q / 2 ** 24);
  const g = new Float32Array(w.length);

  // Per-example sizes: acts[i] is layer i's input (acts[0] the image), acts[i + 1] its output.
  const sizes = [F];
  for (const l of layers) {
    const inSize = sizes[sizes.length - 1];
    sizes.push(
      l.op === 'conv'
        ? l.outC * l.outH * l.outW
        : l.op === 'maxpool'
          ? l.C * l.outH * l.outW
          : l.op === 'gap'
            ? l.C
            : l.op === 'flatten'
              ? inSize
              : l.N,
    );
  }
  const acts = sizes.map((n) => new Float32Array(B * n));
  const zs = layers.map((_, i) => new Float32Array(B * sizes[i + 1]));
  const argmax = layers.map((l, i) => (l.op === 'maxpool' ? new Int32Array(B * sizes[i + 1]) : null));
  const grads = sizes.map((n) => new Float32Array(B * n));
  const maxCol = Math.max(1, ...layers.map((l) => (l.op === 'conv' ? l.outH * l.outW * l.K : 0)));
  const maxPix = Math.max(
    1,
    ...layers.map((l) => (l.op === 'conv' ? l.outH * l.outW * l.outC : l.op === 'dense' ? l.N : 0)),
  );
  const col = new Float32Array(maxCol);
  const dcol = new Float32Array(maxCol);
  const pix = new Float32Array(maxPix);
  const labels = new Uint8Array(B);

  const forward = (indices: ArrayLike<number>, rows: number): Float32Array => {
    const x0 = acts[0];
    for (let b = 0; b < rows; b++) {
      for (let k = 0; k < F; k++) x0[b * F + k] = (dataset.pixels[indices[b] * F + k] >> 1) / 128;
      labels[b] = dataset.labels[indices[b]];
    }
    layers.forEach((l, li) => {
      const x = acts[li];
      const y = acts[li + 1];
      const z = zs[li];
      const inSize = sizes[li];
      const outSize = sizes[li + 1];
      for (let b = 0; b < rows; b++) {
        const xo = b * inSize;
        const yo = b * outSize;
        switch (l.op) {
          case 'conv': {
            const P = l.outH * l.outW;
            const N = l.outC;
            im2col(l, x, xo, col);
            for (let n = 0; n < N; n++) pix.fill(w[l.bOffset + n], n * P, (n + 1) * P);
            for (let k = 0; k < l.K; k++) {
              const c0 = k * P;
              for (let n = 0; n < N; n++) {
                const wv = w[l.wOffset + k * N + n];
                const z0 = n * P;
                for (let p = 0; p < P; p++) pix[z0 + p] += wv * col[c0 + p];
              }
            }
            for (let i = 0; i < N * P; i++) {
              z[yo + i] = pix[i];
              y[yo + i] = act(l.activation, pix[i]) + (l.residual ? x[xo + i] : 0);
            }
            break;
          }
          case 'maxpool': {
            const am = argmax[li]!;
            for (let c = 0; c < l.C; c++) {
              for (let oy = 0; oy < l.outH; oy++) {
                for (let ox = 0; ox < l.outW; ox++) {
                  let best = -1;
                  let bestV = Number.NEGATIVE_INFINITY;
                  for (let dy = 0; dy < 2; dy++) {
                    for (let dx = 0; dx < 2; dx++) {
                      const idx = (c * l.inH + 2 * oy + dy) * l.inW + 2 * ox + dx;
                      if (x[xo + idx] > bestV) {
                        bestV = x[xo + idx];
                        best = idx;
                      }
                    }
                  }
                  const o = (c * l.outH + oy) * l.outW + ox;
                  y[yo + o] = bestV;
                  am[yo + o] = best;
                }
              }
            }
            break;
          }
          case 'gap':
            for (let c = 0; c < l.C; c++) {
              let sum = 0;
              for (let p = 0; p < l.HW; p++) sum += x[xo + c * l.HW + p];
              y[yo + c] = sum / l.HW;
            }
            break;
          case 'flatten':
            y.set(x.subarray(xo, xo + inSize), yo);
            break;
          case 'dense':
            for (let n = 0; n < l.N; n++) z[yo + n] = w[l.bOffset + n];
            for (let k = 0; k < l.K; k++) {
              const a = x[xo + k];
              if (a === 0) continue;
              for (let n = 0; n < l.N; n++) z[yo + n] += a * w[l.wOffset + k * l.N + n];
            }
            for (let n = 0; n < l.N; n++)
              y[yo + n] = l.activation
                ? act(l.activation, z[yo + n]) + (l.residual ? x[xo + n] : 0)
                : z[yo + n];
            break;
        }
      }
    });
    return zs[layers.length - 1];
  };

  /** Back-propagates grads[last] (dL/dlogits) down to layer 0, accumulating g. */
  const backward = (rows: number) => {
    for (let li = layers.length - 1; li >= 0; li--) {
      const l = layers[li];
      const x = acts[li];
      const z = zs[li];
      const dy = grads[li + 1];
      const dx = grads[li];
      const inSize = sizes[li];
      const outSize = sizes[li + 1];
      const needDx = li > 0;
      dx.fill(0, 0, rows * inSize);
      for (let b = 0; b < rows; b++) {
        const xo = b * inSize;
        const yo = b * outSize;
        switch (l.op) {
          case 'conv': {
            const P = l.outH * l.outW;
            const N = l.outC;
            for (let i = 0; i < N * P; i++) {
              const d = dy[yo + i];
              pix[i] = d * actGrad(l.activation, z[yo + i]);
              if (l.residual) dx[xo + i] += d;
            }
            im2col(l, x, xo, col);
            for (let n = 0; n < N; n++) {
              let sum = 0;
              for (let p = 0; p < P; p++) sum += pix[n * P + p];
              g[l.bOffset + n] += sum;
            }
            if (needDx) dcol.fill(0, 0, l.K * P);
            for (let k = 0; k < l.K; k++) {
              const c0 = k * P;
              for (let n = 0; n < N; n++) {
                const z0 = n * P;
                let dw = 0;
                for (let p = 0; p < P; p++) dw += col[c0 + p] * pix[z0 + p];
                g[l.wOffset + k * N + n] += dw;
                if (needDx) {
                  const wv = w[l.wOffset + k * N + n];
                  for (let p = 0; p < P; p++) dcol[c0 + p] += wv * pix[z0 + p];
                }
              }
            }
            if (needDx) col2imAdd(l, dcol, dx, xo);
            break;
          }
          case 'maxpool': {
            const am = argmax[li]!;
            for (let o = 0; o < outSize; o++) dx[xo + am[yo + o]] += dy[yo + o];
            break;
          }
          case 'gap':
            for (let c = 0; c < l.C; c++) {
              const d = dy[yo + c] / l.HW;
              for (let p = 0; p < l.HW; p++) dx[xo + c * l.HW + p] = d;
            }
            break;
          case 'flatten':
            dx.set(dy.subarray(yo, yo + outSize), xo);
            break;
          case 'dense': {
            for (let n = 0; n < l.N; n++) {
              const d = dy[yo + n];
              const dz = l.activation ? d * actGrad(l.activation, z[yo + n]) : d;
              pix[n] = dz;
              g[l.bOffset + n] += dz;
              if (l.residual) dx[xo + n] += d;
            }
            for (let k = 0; k < l.K; k++) {
              const a = x[xo + k];
              const wRow = l.wOffset + k * l.N;
              if (a !== 0) for (let n = 0; n < l.N; n++) g[wRow + n] += a * pix[n];
              if (needDx) {
                let s = 0;
                for (let n = 0; n < l.N; n++) s += pix[n] * w[wRow + n];
                dx[xo + k] += s;
              }
            }
            break;
          }
        }
      }
    }
  };

  const xent = (logits: Float32Array, rows: number, grad: Float32Array | null) => {
    let loss = 0;
    let correct = 0;
    for (let b = 0; b < rows; b++) {
      const o = b * C;
      let arg = 0;
      for (let j = 1; j < C; j++) if (logits[o + j] > logits[o + arg]) arg = j;
      if (arg === labels[b]) correct++;
      let S = 0;
      for (let j = 0; j < C; j++) S += Math.exp(logits[o + j] - logits[o + arg]);
      loss += Math.log(S) - (logits[o + labels[b]] - logits[o + arg]);
      if (grad) {
        for (let j = 0; j < C; j++) {
          const p = Math.exp(logits[o + j] - logits[o + arg]) / S;
          grad[o + j] = (p - (j === labels[b] ? 1 : 0)) / rows;
        }
      }
    }
    return { loss, correct };
  };

  return { w, g, forward, backward, xent, order, logitGrad: grads[layers.length] };
}
