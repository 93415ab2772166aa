/**
 * Node-side dataset loading: reads public/datasets/<name>.bin, building it first if it is missing
 * (the lazy build step), and checks its sha256 against the catalog (or the spec).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/types.ts';
import { buildDataset, DATASET_DIR } from './build.ts';
import { type DatasetName, datasetEntry, isDatasetName } from './catalog.ts';
import { decodeDataset, sha256Of } from './format.ts';

const cache = new Map<string, Promise<Dataset>>();

async function readOrBuild(name: DatasetName, dir: string): Promise<Uint8Array> {
  const path = join(dir, datasetEntry(name).file);
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await buildDataset(name, dir);
    return new Uint8Array(await readFile(path));
  }
}

/** Where a sponsor's dataset (not in the catalog) is kept on this machine, by content hash. */
export function sponsoredDatasetPath(sha256: string, dir = DATASET_DIR): string {
  if (!/^0x[0-9a-f]{64}$/.test(sha256)) throw new Error(`'${sha256}' is not a dataset hash`);
  return join(dir, 'sponsored', `${sha256}.bin`);
}

/** Keeps a sponsor's dataset on this machine (written whole, then renamed: never half a file). */
export async function saveSponsoredDataset(bytes: Uint8Array, dir = DATASET_DIR): Promise<string> {
  const path = sponsoredDatasetPath(sha256Of(bytes), dir);
  await mkdir(join(dir, 'sponsored'), { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.part`;
  await writeFile(temp, bytes);
  await rename(temp, path);
  return path;
}

async function readSponsored(name: string, sha256: string | undefined, dir: string): Promise<Uint8Array> {
  if (!sha256 || !/^0x[0-9a-f]{64}$/.test(sha256))
    throw new Error(`dataset '${name}' is not in the catalog and '${sha256}' is not a dataset hash`);
  try {
    return new Uint8Array(await readFile(sponsoredDatasetPath(sha256, dir)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new Error(`dataset '${name}' (${sha256}) is not on this machine: fetch it from its coordinator`);
  }
}

/**
 * Loads a dataset by name; `expectedSha256` (e.g. from a spec) defaults to the catalog's hash. A
 * name outside the catalog is a sponsor's dataset, read by its hash from `sponsored/`.
 */
export function loadDataset(name: string, expectedSha256?: string, dir = DATASET_DIR): Promise<Dataset> {
  const known = isDatasetName(name);
  const expected = expectedSha256 ?? (known ? datasetEntry(name).sha256 : undefined);
  const cacheKey = `${dir}\0${name}\0${expected}`;
  let loaded = cache.get(cacheKey);
  if (!loaded) {
    const bytes = known ? readOrBuild(name as DatasetName, dir) : readSponsored(name, expected, dir);
    loaded = bytes.then((b) => decodeDataset(name, b, expected));
    loaded.catch(() => cache.delete(cacheKey));
    cache.set(cacheKey, loaded);
  }
  return loaded;
}
