import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rescale, shrRound } from './fixed.ts';
import { columnSums, matmulEWt, matmulXtE, matmulXW, rescaleAddBias, rescaleAll } from './matmul.ts';

const i8s = (n: number) => fc.array(fc.integer({ min: -127, max: 127 }), { minLength: n, maxLength: n });
const dims = fc.record({
  B: fc.integer({ min: 1, max: 9 }),
  K: fc.integer({ min: 1, max: 9 }),
  N: fc.integer({ min: 1, max: 9 }),
});

describe('i8 matmul layouts against the naive definition', () => {
  it('X·W, Xᵀ·E, E·Wᵀ', () => {
    fc.assert(
      fc.property(
        dims.chain((d) => fc.tuple(fc.constant(d), i8s(d.B * d.K), i8s(d.K * d.N), i8s(d.B * d.N))),
        ([{ B, K, N }, xs, ws, es]) => {
          const x = Int8Array.from(xs);
          const w = Int8Array.from(ws);
          const e = Int8Array.from(es);
          const xw = new Int32Array(B * N).fill(99); // stale contents must be overwritten
          const xte = new Int32Array(K * N).fill(99);
          const ewt = new Int32Array(B * K).fill(99);
          matmulXW(x, w, B, K, N, xw);
          matmulXtE(x, e, B, K, N, xte);
          matmulEWt(e, w, B, K, N, ewt);
          for (let b = 0; b < B; b++)
            for (let n = 0; n < N; n++) {
              let s = 0;
              for (let k = 0; k < K; k++) s += x[b * K + k] * w[k * N + n];
              expect(xw[b * N + n]).toBe(s);
            }
          for (let k = 0; k < K; k++)
            for (let n = 0; n < N; n++) {
              let s = 0;
              for (let b = 0; b < B; b++) s += x[b * K + k] * e[b * N + n];
              expect(xte[k * N + n]).toBe(s);
            }
          for (let b = 0; b < B; b++)
            for (let k = 0; k < K; k++) {
              let s = 0;
              for (let n = 0; n < N; n++) s += e[b * N + n] * w[k * N + n];
              expect(ewt[b * K + k]).toBe(s);
            }
        },
      ),
    );
  });

  it('fused epilogues equal their element-wise definitions', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -0x80000000, max: 0x7fffffff }), { minLength: 12, maxLength: 12 }),
        fc.integer({ min: -40, max: 40 }),
        (vals, shift) => {
          const acc = Int32Array.from(vals);
          const out = new Int32Array(12);
          rescaleAll(acc, shift, out, 12);
          expect([...out]).toEqual(vals.map((v) => rescale(v, shift)));
          const bias = Int32Array.from([vals[0], vals[5], vals[11]]);
          const z = new Int32Array(12);
          rescaleAddBias(acc, 4, 3, shift, bias, 8, z);
          expect([...z]).toEqual(vals.map((v, i) => (rescale(v, shift) + shrRound(bias[i % 3], 8)) | 0));
          const sums = new Int32Array(3);
          columnSums(acc, 4, 3, sums);
          expect([...sums]).toEqual(
            [0, 1, 2].map((j) => (vals[j] + vals[j + 3] + vals[j + 6] + vals[j + 9]) | 0),
          );
        },
      ),
    );
  });
});
