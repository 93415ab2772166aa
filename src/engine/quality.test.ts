/**
 * The quality bar (DESIGN §1): the reference task (784-128-10 ReLU, three epochs of the 8000
 * training digits) reaches ≥ 94.0% validation accuracy on the integer engine and is within 1.0 point
 * of the float32 trainer with the same architecture, init, data order and steps.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { parseTaskSpec } from '../protocol/spec.ts';
import { trainFloatReference } from './float-reference.ts';
import { REFERENCE_DIGEST } from './selftest-vectors.ts';
import { trainCpu } from './train-cpu.ts';

const spec = parseTaskSpec(
  JSON.parse(readFileSync(new URL('../../specs/reference-mlp.json', import.meta.url), 'utf8')),
);

describe('reference task quality', () => {
  it('integer ≥ 94.0% and within 1.0 point of float32', async () => {
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const int = await trainCpu(spec, dataset);
    const float = trainFloatReference(spec, dataset);
    const intAcc = (100 * int.valCorrect) / int.valCount;
    const floatAcc = (100 * float.valCorrect) / float.valCount;
    console.log(`reference task: integer ${intAcc.toFixed(2)}%, float32 ${floatAcc.toFixed(2)}%`);
    expect(int.valCount).toBe(2000);
    expect(int.digest).toBe(REFERENCE_DIGEST);
    expect(intAcc).toBeGreaterThanOrEqual(94.0);
    expect(Math.abs(intAcc - floatAcc)).toBeLessThanOrEqual(1.0);
  });
});
