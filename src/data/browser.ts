/**
 * Browser-side dataset loading: fetches <base>/<name>.bin (served from public/datasets/ by the web
 * app or the coordinator) and checks its sha256 exactly as Node does.
 */
import type { Dataset } from '../engine/types.ts';
import { datasetEntry } from './catalog.ts';
import { decodeDataset } from './format.ts';

export async function fetchDataset(
  name: string,
  expectedSha256?: string,
  baseUrl = '/datasets/',
): Promise<Dataset> {
  const entry = datasetEntry(name);
  const url = new URL(entry.file, new URL(baseUrl, globalThis.location?.href ?? 'http://localhost/'));
  const response = await fetch(url);
  if (!response.ok) throw new Error(`dataset '${name}': GET ${url} → ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return decodeDataset(name, bytes, expectedSha256 ?? entry.sha256);
}
