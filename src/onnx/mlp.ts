/**
 * ONNX export of a Cambrian MLP (docs/ONNX.md): the float graph that mirrors the engine's integer
 * forward pass closely enough that anyone can run a leaderboard model with any ONNX runtime.
 *
 * - Input `pixels`: float32 [N, inputs], intensities in [0, 1] (p/255 for a u8 pixel p). The graph
 *   first reproduces the engine's input quantisation: p = round(255·x), operand (p >> 1) / 128.
 * - Each hidden layer: MatMul, Add bias, activation as the engine defines it (ReLU; leaky ReLU with
 *   slope 1/8; hard-tanh = Clip(−1, 1); GELU = I-BERT's i-GELU polynomial with the engine's Q16
 *   constants), plus the layer input when residual.
 * - Output `logits`: float32 [N, classes], in the engine's logit units (Q16 value / 2^16).
 *
 * Weights come from the final i32 master parameters (Q24, canonical order). By default each weight
 * matrix is rounded to int8 half-even with its per-tensor power-of-two shift, exactly as the engine
 * validates, then dequantised; biases are rounded to Q16 as the engine adds them. Browser-safe.
 */

import { quantizeRNE } from '../engine/ops/quantize.ts';
import type { Activation, TaskSpec } from '../protocol/spec.ts';
import { floatValueInfo, type GraphDef, model, type NodeDef } from './proto.ts';

export const ONNX_OPSET = 13;
export const ONNX_IR_VERSION = 7;
export const INPUT_NAME = 'pixels';
export const OUTPUT_NAME = 'logits';

/** i-GELU constants, the engine's Q16 integers (src/engine/ops/activation.ts) as exact floats. */
const GELU_INV_SQRT2 = 46341 / 65536;
const GELU_NEG_B = 115933 / 65536;
const GELU_A = -18927 / 65536;

export type MlpModel = TaskSpec['model'];

export interface LayerWeights {
  /** [K][N] row-major, the engine's layout. */
  weight: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
}

/** How weights are turned to floats: `int8` as the engine validates (default), `master` the raw Q24. */
export type WeightMode = 'int8' | 'master';

export function layerShapes(m: MlpModel): { inputs: number; outputs: number }[] {
  const widths = [m.inputs, ...m.hidden.map((h) => h.units), m.classes];
  return widths.slice(1).map((outputs, l) => ({ inputs: widths[l], outputs }));
}

export function parameterCount(m: MlpModel): number {
  return layerShapes(m).reduce((n, s) => n + s.inputs * s.outputs + s.outputs, 0);
}

/**
 * Splits the final master parameters (i32 Q24, layer by layer: W [K][N] row-major then b [N]) into
 * float layers. `int8`: W → RNE int8 with the engine's per-tensor shift → q·2^(s−24); b →
 * shr_round(b, 8)/2^16. `master`: W/2^24, b/2^24.
 */
export function weightsFromParams(
  m: MlpModel,
  params: Int32Array,
  mode: WeightMode = 'int8',
): LayerWeights[] {
  return weightLayersFromParams(layerShapes(m), params, mode);
}

/** The same split for any list of [K][N] weight layers in canonical order (MLP or v2 models). */
export function weightLayersFromParams(
  shapes: { inputs: number; outputs: number }[],
  params: Int32Array,
  mode: WeightMode = 'int8',
): LayerWeights[] {
  const expected = shapes.reduce((n, s) => n + s.inputs * s.outputs + s.outputs, 0);
  if (params.length !== expected) {
    throw new Error(`expected ${expected} parameters for this model, got ${params.length}`);
  }
  let at = 0;
  return shapes.map(({ inputs, outputs }) => {
    const w = params.subarray(at, at + inputs * outputs);
    at += inputs * outputs;
    const b = params.subarray(at, at + outputs);
    at += outputs;
    const weight = new Float32Array(w.length);
    const bias = new Float32Array(outputs);
    if (mode === 'int8') {
      const q = new Int8Array(w.length);
      const scale = 2 ** (quantizeRNE(w, q) - 24);
      for (let i = 0; i < q.length; i++) weight[i] = q[i] * scale;
      // shr_round(b, 8): round half up to Q16.
      for (let i = 0; i < outputs; i++) bias[i] = Math.floor((b[i] + 128) / 256) / 65536;
    } else {
      for (let i = 0; i < w.length; i++) weight[i] = w[i] / 2 ** 24;
      for (let i = 0; i < outputs; i++) bias[i] = b[i] / 2 ** 24;
    }
    return { weight, bias, inputs, outputs };
  });
}

/** Builds nodes with unique, readable names. */
export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: GraphDef['initializers'] = [];
  private readonly constants = new Map<number, string>();

  op(op: string, inputs: string[], output: string, attributes?: NodeDef['attributes']): string {
    this.nodes.push({ op, inputs, outputs: [output], name: `${op}_${this.nodes.length}`, attributes });
    return output;
  }

  /** A float scalar initializer, shared by value. */
  scalar(value: number): string {
    let name = this.constants.get(value);
    if (!name) {
      name = `const_${this.constants.size}`;
      this.constants.set(value, name);
      this.initializers.push({ name, dims: [], data: Float32Array.of(value) });
    }
    return name;
  }

  tensor(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push({ name, dims, data });
    return name;
  }

  int64Tensor(name: string, dims: number[], int64: number[]): string {
    this.initializers.push({ name, dims, int64 });
    return name;
  }

  /** The engine's input operand: floor(round(255·x) / 2) / 128. */
  inputQuantisation(x: string): string {
    const p = this.op('Round', [this.op('Mul', [x, this.scalar(255)], 'pixels_u8_float')], 'pixels_u8');
    const clipped = this.op('Clip', [p, this.scalar(0), this.scalar(255)], 'pixels_u8_clipped');
    const halved = this.op(
      'Floor',
      [this.op('Mul', [clipped, this.scalar(0.5)], 'pixels_half')],
      'pixels_q7',
    );
    return this.op('Mul', [halved, this.scalar(1 / 128)], 'input_operand');
  }

  activation(act: Activation, z: string, prefix: string): string {
    switch (act) {
      case 'relu':
        return this.op('Relu', [z], `${prefix}_relu`);
      case 'leaky_relu':
        return this.op('LeakyRelu', [z], `${prefix}_leaky_relu`, [{ name: 'alpha', float: 0.125 }]);
      case 'hardtanh':
        return this.op('Clip', [z, this.scalar(-1), this.scalar(1)], `${prefix}_hardtanh`);
      case 'gelu':
        return this.gelu(z, prefix);
    }
  }

  /** i-GELU: z/2 · (1 + sign(u)·(a·(min(|u|, −b) + b)² + 1)), u = z/√2. */
  private gelu(z: string, p: string): string {
    const u = this.op('Mul', [z, this.scalar(GELU_INV_SQRT2)], `${p}_gelu_u`);
    const clipped = this.op(
      'Min',
      [this.op('Abs', [u], `${p}_gelu_abs`), this.scalar(GELU_NEG_B)],
      `${p}_gelu_min`,
    );
    const t = this.op('Sub', [clipped, this.scalar(GELU_NEG_B)], `${p}_gelu_t`);
    const t2 = this.op('Mul', [t, t], `${p}_gelu_t2`);
    const mag = this.op(
      'Add',
      [this.op('Mul', [t2, this.scalar(GELU_A)], `${p}_gelu_at2`), this.scalar(1)],
      `${p}_gelu_mag`,
    );
    const L = this.op('Mul', [this.op('Sign', [u], `${p}_gelu_sign`), mag], `${p}_gelu_L`);
    const onePlusL = this.op('Add', [L, this.scalar(1)], `${p}_gelu_1pL`);
    return this.op('Mul', [this.op('Mul', [z, onePlusL], `${p}_gelu_zx`), this.scalar(0.5)], `${p}_gelu`);
  }
}

export interface ExportOptions {
  /** Written into the model's metadata_props (e.g. taskId, digest, architecture). */
  metadata?: Record<string, string>;
  doc?: string;
}

/** The ONNX ModelProto bytes of an MLP with the given float weights. */
export function buildMlpOnnx(m: MlpModel, layers: LayerWeights[], options: ExportOptions = {}): Uint8Array {
  const shapes = layerShapes(m);
  if (layers.length !== shapes.length)
    throw new Error(`expected ${shapes.length} weight layers, got ${layers.length}`);
  const g = new GraphBuilder();
  let h = g.inputQuantisation(INPUT_NAME);
  layers.forEach((layer, l) => {
    const { inputs, outputs } = shapes[l];
    if (layer.inputs !== inputs || layer.outputs !== outputs)
      throw new Error(`layer ${l} has the wrong shape`);
    const w = g.tensor(`layer${l}_weight`, [inputs, outputs], layer.weight);
    const b = g.tensor(`layer${l}_bias`, [outputs], layer.bias);
    const last = l === layers.length - 1;
    const z = g.op(
      'Add',
      [g.op('MatMul', [h, w], `layer${l}_matmul`), b],
      last ? OUTPUT_NAME : `layer${l}_z`,
    );
    if (last) return;
    const hidden = m.hidden[l];
    const a = g.activation(hidden.activation, z, `layer${l}`);
    h = hidden.residual ? g.op('Add', [a, h], `layer${l}_residual`) : a;
  });
  return model({
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    producer: 'cambrian',
    producerVersion: '1',
    doc: options.doc,
    metadata: options.metadata,
    graph: {
      name: 'cambrian_mlp',
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [floatValueInfo(INPUT_NAME, ['N', m.inputs], 'pixel intensities in [0, 1] (u8 / 255)')],
      outputs: [floatValueInfo(OUTPUT_NAME, ['N', m.classes], 'class logits')],
    },
  });
}

/** The same function in plain float64 TypeScript: the reference the ONNX graph is tested against. */
export function forwardFloat(
  m: MlpModel,
  layers: LayerWeights[],
  pixels: Float32Array,
  count: number,
): Float64Array {
  let h = new Float64Array(count * m.inputs);
  for (let i = 0; i < h.length; i++)
    h[i] = Math.floor(Math.min(255, Math.max(0, Math.round(pixels[i] * 255))) / 2) / 128;
  layers.forEach((layer, l) => {
    const { inputs: K, outputs: N, weight, bias } = layer;
    const z = new Float64Array(count * N);
    for (let r = 0; r < count; r++) {
      for (let n = 0; n < N; n++) {
        let acc = bias[n];
        for (let k = 0; k < K; k++) acc += h[r * K + k] * weight[k * N + n];
        z[r * N + n] = acc;
      }
    }
    if (l === layers.length - 1) {
      h = z;
      return;
    }
    const { activation, residual } = m.hidden[l];
    const out = z.map((v) => activateFloat(activation, v));
    if (residual) for (let i = 0; i < out.length; i++) out[i] += h[i];
    h = out;
  });
  return h;
}

export function activateFloat(act: Activation, z: number): number {
  switch (act) {
    case 'relu':
      return Math.max(z, 0);
    case 'leaky_relu':
      return z >= 0 ? z : z / 8;
    case 'hardtanh':
      return Math.min(1, Math.max(-1, z));
    case 'gelu': {
      const u = z * GELU_INV_SQRT2;
      const t = Math.min(Math.abs(u), GELU_NEG_B) - GELU_NEG_B;
      const L = Math.sign(u) * (GELU_A * t * t + 1);
      return (z * (1 + L)) / 2;
    }
  }
}
