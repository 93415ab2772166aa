import fc from 'fast-check';
import { concatHex, encodeAbiParameters, type Hex, keccak256, stringToBytes } from 'viem';
import { describe, expect, it } from 'vitest';
import { enableWasmKeccak, keccakBytes } from './keccak.ts';
import { DIGEST_PARAMS, metricsOf, parseTaskResult, resultDigest, type TaskResult } from './result.ts';
import { canonicalSpec, parseTaskSpec, type TaskSpec, taskIdOf } from './spec.ts';
import { checkpointSteps, firstDivergence, traceLeaf, traceRoot } from './trace.ts';

const HASH = `0x${'ab'.repeat(32)}` as Hex;

function spec(overrides: Partial<TaskSpec['training']> = {}): TaskSpec {
  return parseTaskSpec({
    v: 1,
    dataset: { name: 'mnist', sha256: HASH },
    split: { seed: 1, validation: 2000 },
    model: { inputs: 784, classes: 10, hidden: [{ units: 128, activation: 'relu' }] },
    training: {
      optimizer: 'sgd',
      batch: 64,
      steps: 375,
      seed: 7,
      learningRateQ16: 6554,
      momentumQ16: 58982,
      weightDecayQ24: 0,
      ...overrides,
    },
    checkpointEvery: 25,
  });
}

function shuffleKeys(value: unknown, rnd: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rnd));
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).sort(() => rnd() - 0.5);
    return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, rnd)]));
  }
  return value;
}

describe('task spec', () => {
  it('has a canonical JCS form whose keccak is the task id', () => {
    const s = spec();
    const text = canonicalSpec(s);
    expect(text.startsWith('{"checkpointEvery":25,"dataset":{')).toBe(true);
    expect(taskIdOf(s)).toBe(keccak256(stringToBytes(text)));
  });

  it('gives the same task id whatever the key order', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        let x = seed;
        const rnd = () => {
          x = (Math.imul(x, 1103515245) + 12345) | 0;
          return (x >>> 0) / 2 ** 32;
        };
        const shuffled = parseTaskSpec(shuffleKeys(JSON.parse(JSON.stringify(spec())), rnd));
        expect(taskIdOf(shuffled)).toBe(taskIdOf(spec()));
      }),
      { numRuns: 25 },
    );
  });

  it('fills defaults before hashing, so an omitted residual equals residual: false', () => {
    const explicit = JSON.parse(JSON.stringify(spec()));
    explicit.model.hidden[0].residual = false;
    expect(taskIdOf(parseTaskSpec(explicit))).toBe(taskIdOf(spec()));
  });

  it('changes the task id when any hyper-parameter changes', () => {
    expect(taskIdOf(spec({ seed: 8 }))).not.toBe(taskIdOf(spec()));
    expect(taskIdOf(spec({ learningRateQ16: 6553 }))).not.toBe(taskIdOf(spec()));
  });

  it('rejects non-integers, unknown fields, bad hashes and impossible residuals with the field named', () => {
    const base = JSON.parse(JSON.stringify(spec()));
    // biome-ignore lint/suspicious/noExplicitAny: the test mutates raw JSON into invalid shapes on purpose
    const bad = (mutate: (s: any) => void) => {
      const s = structuredClone(base);
      mutate(s);
      return () => parseTaskSpec(s);
    };
    expect(bad((s) => (s.training.learningRateQ16 = 0.1))).toThrow(/learningRateQ16/);
    expect(bad((s) => (s.training.extra = 1))).toThrow(/extra/);
    expect(bad((s) => (s.dataset.sha256 = '0x12'))).toThrow(/sha256/);
    expect(bad((s) => (s.v = 2))).toThrow(/v/);
    expect(bad((s) => (s.model.hidden = [{ units: 64, activation: 'relu', residual: true }]))).toThrow(
      /needs 784 units/,
    );
  });
});

describe('result digest', () => {
  const metrics = {
    taskId: taskIdOf(spec()),
    valCorrect: 1880,
    valCount: 2000,
    valLoss: -(2n ** 40n) + 5n,
    weightsHash: HASH,
    traceRoot: keccak256('0x01'),
  };

  it('is keccak256 of the ABI encoding of the six fields (fixed vector)', () => {
    // abi.encode pads every field to 32 bytes; int64 is sign-extended two's complement.
    const words = [
      metrics.taskId.slice(2),
      (1880).toString(16).padStart(64, '0'),
      (2000).toString(16).padStart(64, '0'),
      (2n ** 256n + metrics.valLoss).toString(16),
      HASH.slice(2),
      metrics.traceRoot.slice(2),
    ];
    expect(resultDigest(metrics)).toBe(keccak256(`0x${words.join('')}`));
  });

  it("equals viem's generic ABI encoder on random fields, at the int64 and uint32 edges too", () => {
    const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => keccak256(b));
    const u32 = fc.oneof(fc.constantFrom(0, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    const i64 = fc.oneof(
      fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n),
      fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
    );
    fc.assert(
      fc.property(
        hash,
        u32,
        u32,
        i64,
        hash,
        hash,
        (taskId, valCorrect, valCount, valLoss, weightsHash, root) => {
          const m = { taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot: root };
          const generic = keccak256(
            encodeAbiParameters(DIGEST_PARAMS, [taskId, valCorrect, valCount, valLoss, weightsHash, root]),
          );
          expect(resultDigest(m)).toBe(generic);
        },
      ),
      { numRuns: 300 },
    );
    expect(() => resultDigest({ ...metrics, valLoss: 2n ** 63n })).toThrow(/out of range for int64/);
    expect(() => resultDigest({ ...metrics, valCount: 2 ** 32 })).toThrow(/out of range for uint32/);
    expect(() => resultDigest({ ...metrics, weightsHash: '0x12' })).toThrow(/not 32 bytes/);
  });

  it('is checked against the fields when a result is parsed', () => {
    const checkpoints = [{ step: 375, stateHash: HASH }];
    const result: TaskResult = {
      ...metrics,
      valLoss: metrics.valLoss.toString(),
      traceRoot: traceRoot(checkpoints),
      checkpoints,
      digest: '0x',
    };
    result.digest = resultDigest(metricsOf(result));
    expect(parseTaskResult(result)).toEqual(result);
    expect(() => parseTaskResult({ ...result, valCorrect: 1881 })).toThrow(/digest does not match/);
    expect(() => parseTaskResult({ ...result, checkpoints: [{ step: 374, stateHash: HASH }] })).toThrow(
      /traceRoot does not match/,
    );
    expect(() => parseTaskResult({ ...result, valLoss: '1.5' })).toThrow(/decimal integer/);
    expect(() => parseTaskResult({ ...result, valLoss: (2n ** 63n).toString() })).toThrow(/int64/);
  });
});

describe('trace', () => {
  const hashArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => keccak256(b));

  it('takes checkpoints every N steps and at the last step', () => {
    expect(checkpointSteps(100, 25)).toEqual([25, 50, 75, 100]);
    expect(checkpointSteps(101, 25)).toEqual([25, 50, 75, 100, 101]);
    expect(checkpointSteps(10, 25)).toEqual([10]);
  });

  it('hashes leaves and pairs as abi.encode(uint32, bytes32) and left ‖ right (generic encoder)', () => {
    fc.assert(
      fc.property(fc.array(hashArb, { minLength: 1, maxLength: 9 }), fc.nat(), (hashes, start) => {
        const cps = hashes.map((h, i) => ({ step: (start % 2 ** 31) + i, stateHash: h }));
        let level = cps.map((c) =>
          keccak256(encodeAbiParameters([{ type: 'uint32' }, { type: 'bytes32' }], [c.step, c.stateHash])),
        );
        expect(traceLeaf(cps[0].step, cps[0].stateHash)).toBe(level[0]);
        while (level.length > 1) {
          level = level.flatMap((h, i) =>
            i % 2 ? [] : i + 1 < level.length ? [keccak256(concatHex([h, level[i + 1]]))] : [h],
          );
        }
        expect(traceRoot(cps)).toBe(level[0]);
      }),
      { numRuns: 100 },
    );
  });

  it('has the leaf as the root of a one-checkpoint trace', () => {
    expect(traceRoot([{ step: 3, stateHash: HASH }])).toBe(traceLeaf(3, HASH));
  });

  it('changes the root when any leaf changes, and finds the first divergence', () => {
    fc.assert(
      fc.property(
        fc.array(hashArb, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        hashArb,
        (hashes, at, other) => {
          const a = hashes.map((h, i) => ({ step: (i + 1) * 10, stateHash: h }));
          const i = at % a.length;
          fc.pre(other !== a[i].stateHash);
          const b = a.map((c, j) => (j === i ? { ...c, stateHash: other } : c));
          expect(traceRoot(b)).not.toBe(traceRoot(a));
          expect(firstDivergence(a, b)).toBe(i);
          expect(firstDivergence(a, a)).toBe(-1);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('keccak', () => {
  it('gives the same bytes in WebAssembly as in JavaScript, at every padding boundary', async () => {
    const inputs = [0, 1, 31, 32, 64, 135, 136, 137, 271, 272, 4096].map((n) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 29 + n) & 0xff),
    );
    const javascript = inputs.map((d) => keccakBytes(d));
    await enableWasmKeccak();
    inputs.forEach((d, i) => {
      expect(keccakBytes(d)).toEqual(javascript[i]);
      expect(keccak256(d, 'bytes')).toEqual(javascript[i]);
    });
    expect(keccak256(stringToBytes(''))).toBe(
      '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
    );
  });
});
