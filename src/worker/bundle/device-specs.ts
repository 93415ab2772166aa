/**
 * Makes the fixture scripts/device-check.sh checks a GPU machine against: random task specs and the
 * results the CPU reference gives for them HERE (digest, weightsHash, validation), written to
 * scripts/device-check/specs/*.json and scripts/device-check/expected.json.
 *
 *   npx tsx src/worker/bundle/device-specs.ts
 *
 * Re-run it when the engine's arithmetic or the spec format changes (the CPU reference defines the
 * expected bits; the device's WebGPU backend must reproduce them).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../data/node.ts';
import { randomSpec, randomSpecV2 } from '../../engine/random-spec.ts';
import { train } from '../../engine/train.ts';
import { type AnyTaskSpec, parseTaskSpec } from '../../protocol/spec.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = join(ROOT, 'scripts', 'device-check');

/** Seeds of the random specs: small ones (blobs, tiny nets) and full-size MNIST ones. */
const SMALL_SEEDS = [1, 2, 3, 4, 5, 6];
const MNIST_SEEDS = [11, 12, 13, 14];
/** Seeds of the random v2 (conv) specs: small ones on blobs read as 8×8 images, and MNIST ones. */
const V2_SMALL_SEEDS = [1, 2, 3, 4, 5, 6];
const V2_MNIST_SEEDS = [21, 22, 23];

export interface ExpectedResult {
  file: string;
  taskId: string;
  digest: string;
  weightsHash: string;
  valCorrect: number;
  valCount: number;
}

async function namedSpecs(): Promise<[string, AnyTaskSpec][]> {
  const reference = parseTaskSpec(
    JSON.parse(await readFile(join(ROOT, 'specs', 'reference-mlp.json'), 'utf8')),
  );
  return [
    ['v1-reference-mlp', reference],
    ...SMALL_SEEDS.map((s): [string, AnyTaskSpec] => [`v1-small-${s}`, randomSpec(s, { small: true })]),
    ...MNIST_SEEDS.map((s): [string, AnyTaskSpec] => [`v1-mnist-${s}`, randomSpec(s)]),
    ...V2_SMALL_SEEDS.map((s): [string, AnyTaskSpec] => [`v2-small-${s}`, randomSpecV2(s, { small: true })]),
    ...V2_MNIST_SEEDS.map((s): [string, AnyTaskSpec] => [`v2-mnist-${s}`, randomSpecV2(s)]),
  ];
}

async function main() {
  await rm(join(FIXTURE, 'specs'), { recursive: true, force: true });
  await mkdir(join(FIXTURE, 'specs'), { recursive: true });
  const expected: ExpectedResult[] = [];
  for (const [name, spec] of await namedSpecs()) {
    const file = `specs/${name}.json`;
    await writeFile(join(FIXTURE, file), `${JSON.stringify(spec, null, 2)}\n`);
    const result = await train(spec, await loadDataset(spec.dataset.name, spec.dataset.sha256));
    const { taskId, digest, weightsHash, valCorrect, valCount } = result;
    expected.push({ file, taskId, digest, weightsHash, valCorrect, valCount });
    console.log(`${name}: ${digest}`);
  }
  await writeFile(join(FIXTURE, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
}

await main();
