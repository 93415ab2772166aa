/**
 * ONNX export of a v2 (conv) model (docs/ONNX.md), opset 13, the same contract as the MLP export:
 *
 * - Input `pixels`: float32 [N, C·H·W], intensities in [0, 1], channel-major rows as the dataset
 *   stores them; the graph reproduces the engine's input operand (p >> 1) / 128 and reshapes to
 *   NCHW [N, C, H, W].
 * - conv: Conv (zero pads ⌊k/2⌋, strides s) with bias, the activation, + the input when residual;
 *   maxpool: MaxPool 2×2 stride 2 (floor: an odd last row/column is dropped, as the engine does);
 *   gap: GlobalAveragePool + Flatten; flatten: Flatten (NCHW → C·H·W, the engine's channel-major
 *   order); dense and the classifier: Gemm, activation, residual.
 * - Output `logits`: float32 [N, classes].
 *
 * Parameters come in the canonical v2 order (each conv, each dense, the classifier; each W then b).
 * A conv W is the engine's [K][N] matrix with K = (ic·k + ky)·k + kx and N = the output channel;
 * ONNX wants OIHW [oc][ic][ky][kx], a transpose of the same numbers. Weights are rounded to int8 with
 * the engine's per-tensor power-of-two shift (or kept as Q24 masters), as for the MLP.
 * Browser-safe.
 */
import { type Layer, layerShapes, type ModelV2, type Shape } from '../protocol/spec.ts';
import {
  activateFloat,
  type ExportOptions,
  GraphBuilder,
  INPUT_NAME,
  type LayerWeights,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  OUTPUT_NAME,
  type WeightMode,
  weightLayersFromParams,
} from './mlp.ts';
import { floatValueInfo, model } from './proto.ts';

/** One weight layer of a v2 model: a conv (k×k over inChannels) or a dense/classifier matrix. */
export type WeightLayerShape =
  | { kind: 'conv'; inChannels: number; kernel: number; outChannels: number; inputs: number; outputs: number }
  | { kind: 'dense'; inputs: number; outputs: number };

/** The weight layers of a v2 model in canonical order, with their [K][N] sizes (inputs = K). */
export function weightLayerShapes(m: ModelV2): WeightLayerShape[] {
  const shapes = layerShapes(m);
  const out: WeightLayerShape[] = [];
  let input: Shape = { kind: 'image', ...m.input };
  for (const [i, layer] of m.layers.entries()) {
    if (layer.op === 'conv' && input.kind === 'image') {
      const K = input.channels * layer.kernel * layer.kernel;
      out.push({
        kind: 'conv',
        inChannels: input.channels,
        kernel: layer.kernel,
        outChannels: layer.channels,
        inputs: K,
        outputs: layer.channels,
      });
    } else if (layer.op === 'dense' && input.kind === 'flat') {
      out.push({ kind: 'dense', inputs: input.units, outputs: layer.units });
    }
    input = shapes[i];
  }
  if (input.kind !== 'flat') throw new Error('a v2 model must end flat');
  out.push({ kind: 'dense', inputs: input.units, outputs: m.classes });
  return out;
}

export function cnnParameterCount(m: ModelV2): number {
  return weightLayerShapes(m).reduce((n, s) => n + s.inputs * s.outputs + s.outputs, 0);
}

/** Splits the final master parameters of a v2 model into float weight layers ([K][N] as stored). */
export function cnnWeightsFromParams(
  m: ModelV2,
  params: Int32Array,
  mode: WeightMode = 'int8',
): LayerWeights[] {
  return weightLayersFromParams(weightLayerShapes(m), params, mode);
}

/** The engine's conv W [K][N] (K = (ic·k + ky)·k + kx) as ONNX's OIHW [N][ic][ky][kx]. */
export function convWeightOIHW(
  weight: Float32Array,
  inChannels: number,
  kernel: number,
  outChannels: number,
) {
  const K = inChannels * kernel * kernel;
  const out = new Float32Array(K * outChannels);
  for (let oc = 0; oc < outChannels; oc++)
    for (let k = 0; k < K; k++) out[oc * K + k] = weight[k * outChannels + oc];
  return out;
}

/** The ONNX ModelProto bytes of a v2 model with the given float weights. */
export function buildCnnOnnx(m: ModelV2, weights: LayerWeights[], options: ExportOptions = {}): Uint8Array {
  const shapes = weightLayerShapes(m);
  if (weights.length !== shapes.length)
    throw new Error(`expected ${shapes.length} weight layers, got ${weights.length}`);
  shapes.forEach((s, l) => {
    if (weights[l].inputs !== s.inputs || weights[l].outputs !== s.outputs)
      throw new Error(`weight layer ${l} has the wrong shape`);
  });
  const g = new GraphBuilder();
  const { channels, height, width } = m.input;
  const nchw = g.int64Tensor('input_shape', [4], [-1, channels, height, width]);
  let h = g.op('Reshape', [g.inputQuantisation(INPUT_NAME), nchw], 'input_nchw');
  let w = 0;
  m.layers.forEach((layer, i) => {
    h = layerNodes(
      g,
      layer,
      i,
      h,
      layer.op === 'conv' || layer.op === 'dense' ? [shapes[w], weights[w++]] : null,
    );
  });
  const last = weights[w];
  g.op(
    'Gemm',
    [
      h,
      g.tensor('classifier_weight', [last.inputs, last.outputs], last.weight),
      g.tensor('classifier_bias', [last.outputs], last.bias),
    ],
    OUTPUT_NAME,
  );
  return model({
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    producer: 'cambrian',
    producerVersion: '1',
    doc: options.doc,
    metadata: options.metadata,
    graph: {
      name: 'cambrian_cnn',
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [
        floatValueInfo(
          INPUT_NAME,
          ['N', channels * height * width],
          'pixel intensities in [0, 1] (u8 / 255), [C][H][W] rows',
        ),
      ],
      outputs: [floatValueInfo(OUTPUT_NAME, ['N', m.classes], 'class logits')],
    },
  });
}

function layerNodes(
  g: GraphBuilder,
  layer: Layer,
  i: number,
  h: string,
  weight: [WeightLayerShape, LayerWeights] | null,
): string {
  const p = `layer${i}`;
  switch (layer.op) {
    case 'conv': {
      const [shape, wts] = weight as [WeightLayerShape & { kind: 'conv' }, LayerWeights];
      const { inChannels, kernel, outChannels } = shape;
      const W = g.tensor(
        `${p}_weight`,
        [outChannels, inChannels, kernel, kernel],
        convWeightOIHW(wts.weight, inChannels, kernel, outChannels),
      );
      const B = g.tensor(`${p}_bias`, [outChannels], wts.bias);
      const pad = Math.floor(kernel / 2);
      const z = g.op('Conv', [h, W, B], `${p}_z`, [
        { name: 'kernel_shape', ints: [kernel, kernel] },
        { name: 'pads', ints: [pad, pad, pad, pad] },
        { name: 'strides', ints: [layer.stride, layer.stride] },
      ]);
      const a = g.activation(layer.activation, z, p);
      return layer.residual ? g.op('Add', [a, h], `${p}_residual`) : a;
    }
    case 'maxpool':
      return g.op('MaxPool', [h], `${p}_maxpool`, [
        { name: 'kernel_shape', ints: [2, 2] },
        { name: 'strides', ints: [2, 2] },
      ]);
    case 'gap':
      return g.op('Flatten', [g.op('GlobalAveragePool', [h], `${p}_gap`)], `${p}_gap_flat`, [
        { name: 'axis', int: 1 },
      ]);
    case 'flatten':
      return g.op('Flatten', [h], `${p}_flatten`, [{ name: 'axis', int: 1 }]);
    case 'dense': {
      const [, wts] = weight as [WeightLayerShape, LayerWeights];
      const W = g.tensor(`${p}_weight`, [wts.inputs, wts.outputs], wts.weight);
      const B = g.tensor(`${p}_bias`, [wts.outputs], wts.bias);
      const a = g.activation(layer.activation, g.op('Gemm', [h, W, B], `${p}_z`), p);
      return layer.residual ? g.op('Add', [a, h], `${p}_residual`) : a;
    }
  }
}

/**
 * The same function in plain float64 TypeScript, straight from the [K][N] layout and the spec's
 * definitions (docs/SPEC.md): the reference the ONNX graph is tested against.
 */
export function forwardFloatCnn(
  m: ModelV2,
  weights: LayerWeights[],
  pixels: Float32Array,
  count: number,
): Float64Array {
  const shapes = weightLayerShapes(m);
  const { channels, height, width } = m.input;
  const features = channels * height * width;
  const out: number[] = [];
  const after = layerShapes(m);
  for (let r = 0; r < count; r++) {
    let x = Array.from(
      pixels.subarray(r * features, (r + 1) * features),
      (v) => Math.floor(Math.min(255, Math.max(0, Math.round(v * 255))) / 2) / 128,
    );
    let shape: Shape = { kind: 'image', ...m.input };
    let w = 0;
    m.layers.forEach((layer, i) => {
      const next = after[i];
      switch (layer.op) {
        case 'conv': {
          const s = shapes[w] as WeightLayerShape & { kind: 'conv' };
          const y = convFloat(x, shape as Image, next as Image, s.kernel, layer.stride, weights[w++]);
          const a = y.map((v) => activateFloat(layer.activation, v));
          x = layer.residual ? a.map((v, j) => v + x[j]) : a;
          break;
        }
        case 'maxpool':
          x = maxPoolFloat(x, shape as Image);
          break;
        case 'gap': {
          const img = shape as Image;
          const hw = img.height * img.width;
          x = Array.from(
            { length: img.channels },
            (_, c) => x.slice(c * hw, (c + 1) * hw).reduce((a, b) => a + b, 0) / hw,
          );
          break;
        }
        case 'flatten':
          break; // [C][H][W] is already channel-major
        case 'dense': {
          const y = denseFloat(x, weights[w++]).map((v) => activateFloat(layer.activation, v));
          x = layer.residual ? y.map((v, j) => v + x[j]) : y;
          break;
        }
      }
      shape = next;
    });
    out.push(...denseFloat(x, weights[w]));
  }
  return Float64Array.from(out);
}

function denseFloat(x: number[], { weight, bias, inputs: K, outputs: N }: LayerWeights): number[] {
  return Array.from({ length: N }, (_, n) => {
    let acc = bias[n];
    for (let k = 0; k < K; k++) acc += x[k] * weight[k * N + n];
    return acc;
  });
}

type Image = Shape & { kind: 'image' };

function convFloat(
  x: number[],
  input: Image,
  output: Image,
  kernel: number,
  stride: number,
  wts: LayerWeights,
): number[] {
  const pad = Math.floor(kernel / 2);
  const N = output.channels;
  const y = new Array<number>(N * output.height * output.width).fill(0);
  for (let oc = 0; oc < N; oc++)
    for (let oy = 0; oy < output.height; oy++)
      for (let ox = 0; ox < output.width; ox++) {
        let acc = wts.bias[oc];
        for (let ic = 0; ic < input.channels; ic++)
          for (let ky = 0; ky < kernel; ky++)
            for (let kx = 0; kx < kernel; kx++) {
              const iy = oy * stride + ky - pad;
              const ix = ox * stride + kx - pad;
              if (iy < 0 || ix < 0 || iy >= input.height || ix >= input.width) continue;
              acc +=
                x[(ic * input.height + iy) * input.width + ix] *
                wts.weight[((ic * kernel + ky) * kernel + kx) * N + oc];
            }
        y[(oc * output.height + oy) * output.width + ox] = acc;
      }
  return y;
}

function maxPoolFloat(x: number[], input: Image): number[] {
  const H = Math.floor(input.height / 2);
  const W = Math.floor(input.width / 2);
  const y: number[] = [];
  for (let c = 0; c < input.channels; c++)
    for (let oy = 0; oy < H; oy++)
      for (let ox = 0; ox < W; ox++) {
        const at = (dy: number, dx: number) =>
          x[(c * input.height + 2 * oy + dy) * input.width + 2 * ox + dx];
        y.push(Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1)));
      }
  return y;
}
