import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { geluQ16 } from '../engine/ops/activation.ts';
import { HashRng } from '../nas/rng.ts';
import { ACTIVATIONS } from '../protocol/spec.ts';
import {
  activateFloat,
  buildMlpOnnx,
  forwardFloat,
  INPUT_NAME,
  type MlpModel,
  OUTPUT_NAME,
  parameterCount,
  weightsFromParams,
} from './mlp.ts';
import { decodeModel, onnx } from './proto.ts';

ort.env.wasm.numThreads = 1;

async function runOnnx(bytes: Uint8Array, pixels: Float32Array, count: number, inputs: number) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const out = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', pixels, [count, inputs]) });
  return out[OUTPUT_NAME];
}

/** Q24 master parameters of plausible magnitude (|w| < 1/4), from the hash RNG. */
function randomParams(m: MlpModel, seed: number): Int32Array {
  const rng = new HashRng(seed);
  return Int32Array.from({ length: parameterCount(m) }, () => (rng.nextU32() >>> 9) - (1 << 22));
}

function randomPixels(count: number, inputs: number, seed: number): Float32Array {
  const rng = new HashRng(seed);
  return Float32Array.from({ length: count * inputs }, () => rng.int(256) / 255);
}

describe('ModelProto through onnx-proto', () => {
  it('decodes back to the opset, metadata, initializers and symbolic batch dimension written', () => {
    const m: MlpModel = {
      inputs: 3,
      classes: 2,
      hidden: [{ units: 4, activation: 'relu', residual: false }],
    };
    const layers = weightsFromParams(m, randomParams(m, 5), 'master');
    const decoded = decodeModel(buildMlpOnnx(m, layers, { metadata: { taskId: '0xab' } }));
    expect(decoded.opsetImport.map((o) => Number(o.version))).toEqual([13]);
    expect(decoded.metadataProps.map((p) => [p.key, p.value])).toEqual([['taskId', '0xab']]);
    const weight = (decoded.graph?.initializer ?? []).find((t) => t.name === 'layer0_weight');
    expect(weight?.dims?.map(Number)).toEqual([3, 4]);
    expect(weight?.dataType).toBe(onnx.TensorProto.DataType.FLOAT);
    // rawData may be a view into a larger (Node Buffer) pool: copy it out first.
    expect(new Float32Array(Uint8Array.from(weight?.rawData ?? []).buffer)).toEqual(layers[0].weight);
    const dims = decoded.graph?.input?.[0].type?.tensorType?.shape?.dim;
    expect(dims?.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['N', 3]);
  });
});

describe('i-GELU in float', () => {
  it('matches the engine integer GELU to Q16 rounding', () => {
    for (let z = -5 * 65536; z <= 5 * 65536; z += 977) {
      expect(Math.abs(activateFloat('gelu', z / 65536) - geluQ16(z) / 65536)).toBeLessThan(4 / 65536);
    }
  });
});

describe('ONNX MLP export', () => {
  const model: MlpModel = {
    inputs: 20,
    classes: 5,
    hidden: [
      { units: 16, activation: 'gelu', residual: false },
      { units: 16, activation: 'leaky_relu', residual: true },
      { units: 8, activation: 'hardtanh', residual: false },
      { units: 8, activation: 'relu', residual: true },
    ],
  };

  it.each(['int8', 'master'] as const)(
    'runs in onnxruntime-web and matches the float reference (%s weights)',
    async (mode) => {
      const layers = weightsFromParams(model, randomParams(model, 1), mode);
      const bytes = buildMlpOnnx(model, layers, { metadata: { taskId: '0x00' } });
      const count = 33;
      const pixels = randomPixels(count, model.inputs, 2);
      const logits = await runOnnx(bytes, pixels, count, model.inputs);
      expect(logits.dims).toEqual([count, model.classes]);
      const expected = forwardFloat(model, layers, pixels, count);
      const got = logits.data as Float32Array;
      expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(0.1);
      for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 4);
    },
  );

  it('covers every activation', async () => {
    for (const activation of ACTIVATIONS) {
      const m: MlpModel = { inputs: 6, classes: 3, hidden: [{ units: 6, activation, residual: false }] };
      const layers = weightsFromParams(m, randomParams(m, 7), 'master');
      const pixels = randomPixels(4, 6, 3);
      const got = (await runOnnx(buildMlpOnnx(m, layers), pixels, 4, 6)).data as Float32Array;
      const expected = forwardFloat(m, layers, pixels, 4);
      for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 4);
    }
  });

  it('quantises weights to int8 with a power-of-two scale as the engine validates', () => {
    const m: MlpModel = { inputs: 2, classes: 2, hidden: [] };
    // W = [[1.0, -0.5], [0.25, 0.001]] in Q24, b = [0.5, -1/2^20] in Q24.
    const params = Int32Array.of(1 << 24, -(1 << 23), 1 << 22, 16777, 1 << 23, -16);
    const [layer] = weightsFromParams(m, params, 'int8');
    // max |W| = 2^24 → shift 18, step 2^-6: 0.001 rounds to 0.
    expect([...layer.weight]).toEqual([1, -0.5, 0.25, 0]);
    expect([...layer.bias]).toEqual([0.5, 0]);
    expect(() => weightsFromParams(m, params.subarray(1))).toThrow(/expected 6/);
  });
});
