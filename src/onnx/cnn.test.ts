import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { randomSpec } from '../engine/random-spec.ts';
import { HashRng } from '../nas/rng.ts';
import { ACTIVATIONS, type ModelV2, type TaskSpecV2, TaskSpecV2Schema } from '../protocol/spec.ts';
import { buildOnnx } from './build.ts';
import {
  buildCnnOnnx,
  cnnParameterCount,
  cnnWeightsFromParams,
  convWeightOIHW,
  forwardFloatCnn,
  weightLayerShapes,
} from './cnn.ts';
import { INPUT_NAME, OUTPUT_NAME, parameterCount } from './mlp.ts';
import { decodeModel } from './proto.ts';

ort.env.wasm.numThreads = 1;

const conv = (channels: number, kernel: 1 | 3 | 5, stride: 1 | 2, activation = 'relu', residual = false) =>
  ({ op: 'conv', channels, kernel, stride, activation, residual }) as const;

/** Validates a model through the v2 schema (so the test cannot use a shape the engine rejects). */
function v2Model(model: unknown): ModelV2 {
  return v2Spec(model).model;
}

function v2Spec(model: unknown): TaskSpecV2 {
  return TaskSpecV2Schema.parse({
    v: 2,
    dataset: { name: 'mnist', sha256: `0x${'0'.repeat(64)}` },
    split: { seed: 1, validation: 10 },
    model,
    training: {
      optimizer: 'sgd',
      batch: 8,
      steps: 1,
      seed: 1,
      learningRateQ16: 1,
      momentumQ16: 0,
      weightDecayQ24: 0,
    },
    checkpointEvery: 1,
  });
}

function randomParams(m: ModelV2, seed: number): Int32Array {
  const rng = new HashRng(seed);
  return Int32Array.from({ length: cnnParameterCount(m) }, () => (rng.nextU32() >>> 9) - (1 << 22));
}

function randomPixels(count: number, features: number, seed: number): Float32Array {
  const rng = new HashRng(seed);
  return Float32Array.from({ length: count * features }, () => rng.int(256) / 255);
}

async function runOnnx(bytes: Uint8Array, pixels: Float32Array, count: number) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  try {
    const features = pixels.length / count;
    const out = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', pixels, [count, features]) });
    return out[OUTPUT_NAME];
  } finally {
    await session.release();
  }
}

async function expectOnnxMatchesReference(m: ModelV2, seed: number, mode: 'int8' | 'master') {
  const weights = cnnWeightsFromParams(m, randomParams(m, seed), mode);
  const count = 5;
  const { channels, height, width } = m.input;
  const pixels = randomPixels(count, channels * height * width, seed + 1);
  const logits = await runOnnx(buildCnnOnnx(m, weights), pixels, count);
  expect(logits.dims).toEqual([count, m.classes]);
  const expected = forwardFloatCnn(m, weights, pixels, count);
  const got = logits.data as Float32Array;
  expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(0.05);
  for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 3);
}

describe('ONNX conv export', () => {
  it('turns the engine conv W [K][N], K = (ic·k + ky)·k + kx, into OIHW', () => {
    // 2 input channels, 3×3 kernel, 2 output channels: W[k][oc] = 100·oc + k.
    const K = 2 * 3 * 3;
    const weight = Float32Array.from({ length: K * 2 }, (_, i) => 100 * (i % 2) + Math.floor(i / 2));
    const oihw = convWeightOIHW(weight, 2, 3, 2);
    // OIHW[oc=1][ic=1][ky=2][kx=0] = W[(1·3 + 2)·3 + 0][1] = 100 + 15.
    expect(oihw[((1 * 2 + 1) * 3 + 2) * 3 + 0]).toBe(115);
    expect(oihw[0]).toBe(0);
    expect(oihw[K]).toBe(100);
  });

  it('lists weight layers in canonical order with the engine fan-ins', () => {
    const m = v2Model({
      input: { channels: 2, height: 9, width: 9 },
      classes: 3,
      layers: [
        conv(4, 3, 2),
        { op: 'maxpool' },
        { op: 'flatten' },
        { op: 'dense', units: 5, activation: 'relu' },
      ],
    });
    expect(weightLayerShapes(m).map((s) => [s.inputs, s.outputs])).toEqual([
      [18, 4],
      [16, 5],
      [5, 3],
    ]);
  });

  it.each(['int8', 'master'] as const)(
    'runs in onnxruntime-web and matches the float reference: strides, pools, residuals, flatten (%s)',
    async (mode) => {
      const m = v2Model({
        input: { channels: 2, height: 11, width: 9 },
        classes: 4,
        layers: [
          conv(6, 5, 1, 'gelu'),
          conv(6, 3, 1, 'leaky_relu', true),
          { op: 'maxpool' },
          conv(5, 3, 2, 'hardtanh'),
          conv(5, 1, 1, 'relu', true),
          { op: 'flatten' },
          { op: 'dense', units: 7, activation: 'relu' },
          { op: 'dense', units: 7, activation: 'gelu', residual: true },
        ],
      });
      await expectOnnxMatchesReference(m, 3, mode);
    },
  );

  it('covers global average pooling and every activation', async () => {
    for (const [i, activation] of ACTIVATIONS.entries()) {
      const m = v2Model({
        input: { channels: 1, height: 8, width: 8 },
        classes: 3,
        layers: [conv(4, 3, 1, activation), { op: 'maxpool' }, conv(8, 3, 2, activation), { op: 'gap' }],
      });
      await expectOnnxMatchesReference(m, 10 + i, 'master');
    }
  });

  it('writes opset 13 with the conv operators by name', () => {
    const m = v2Model({
      input: { channels: 1, height: 6, width: 6 },
      classes: 2,
      layers: [conv(2, 3, 1), { op: 'maxpool' }, { op: 'gap' }],
    });
    const decoded = decodeModel(buildCnnOnnx(m, cnnWeightsFromParams(m, randomParams(m, 1))));
    expect(decoded.opsetImport.map((o) => Number(o.version))).toEqual([13]);
    const ops = new Set((decoded.graph?.node ?? []).map((n) => n.opType));
    for (const op of ['Reshape', 'Conv', 'Relu', 'MaxPool', 'GlobalAveragePool', 'Flatten', 'Gemm'])
      expect(ops).toContain(op);
    expect(() => buildCnnOnnx(m, [])).toThrow(/expected 2 weight layers/);
  });

  it('buildOnnx picks the conv graph for a v2 spec and the MLP graph for a v1 spec', () => {
    const v2 = v2Spec({
      input: { channels: 1, height: 4, width: 4 },
      classes: 2,
      layers: [conv(2, 3, 1), { op: 'gap' }],
    });
    const v1 = randomSpec(1, { small: true });
    const opsOf = (bytes: Uint8Array) => (decodeModel(bytes).graph?.node ?? []).map((n) => n.opType);
    expect(opsOf(buildOnnx(v2, randomParams(v2.model, 2)))).toContain('Conv');
    const v1Ops = opsOf(buildOnnx(v1, new Int32Array(parameterCount(v1.model))));
    expect(v1Ops).toContain('MatMul');
    expect(v1Ops).not.toContain('Conv');
  });
});
