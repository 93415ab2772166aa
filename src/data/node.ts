/**
 * Node-side dataset loading: reads public/datasets/<name>.bin, building it first if it is missing
 * (the lazy build step), and checks its sha256 against the catalog (or the spec).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../engine/types.ts';
import { buildDataset, DATASET_DIR } from './build.ts';
import { type DatasetName, datasetEntry } from './catalog.ts';
import { decodeDataset } from './format.ts';

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

/** Loads a dataset by name; `expectedSha256` (e.g. from a spec) defaults to the catalog's hash. */
export function loadDataset(name: string, expectedSha256?: string, dir = DATASET_DIR): Promise<Dataset> {
  const entry = datasetEntry(name);
  const expected = expectedSha256 ?? entry.sha256;
  const cacheKey = `${dir}\0${name}\0${expected}`;
  let loaded = cache.get(cacheKey);
  if (!loaded) {
    loaded = readOrBuild(name as DatasetName, dir).then((bytes) => decodeDataset(name, bytes, expected));
    loaded.catch(() => cache.delete(cacheKey));
    cache.set(cacheKey, loaded);
  }
  return loaded;
}
