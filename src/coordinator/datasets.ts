/**
 * Sponsors' datasets in the database (docs/SPONSORS.md "Data"): the canonical CDS1 binary by sha256 in
 * 1 MiB chunks, so that every coordinator process on one database serves it, and a copy on this
 * machine (src/data/node.ts `sponsored/`) for the audits and the referee, which read files. An
 * upload no search names expires after a day.
 */
import { existsSync } from 'node:fs';
import type { Hex } from 'viem';
import { isDatasetName } from '../data/catalog.ts';
import { sha256Of } from '../data/format.ts';
import {
  DATASET_FORMATS,
  DatasetError,
  type DatasetUpload,
  type ImportedDataset,
  importDataset,
} from '../data/import.ts';
import { saveSponsoredDataset, sponsoredDatasetPath } from '../data/node.ts';
import type { DatasetUploaded } from '../protocol/http.ts';
import { DatasetRefSchema } from '../protocol/search.ts';
import type { Db, Queryable } from './db.ts';
import { Refusal } from './errors.ts';

const CHUNK_BYTES = 1 << 20;
/** How long an upload that no search names is kept. */
export const UNCLAIMED_DATASET_MS = 24 * 3600_000;

export interface DatasetRow {
  sha256: Hex;
  name: string;
  bytes: number;
  count: number;
  features: number;
  classes: number;
  class_counts: number[];
  source: DatasetSource;
  uploaded_at: number;
  expires_at: number | null;
}

/** How the upload was made: what the sponsor needs to map new inputs the same way. */
export interface DatasetSource {
  format: string;
  shape: number[];
  labelNames: string[] | null;
  scaling: { min: number[]; max: number[] } | null;
  duplicates: { count: number; first: Array<[number, number]> };
}

/** Keeps an imported dataset; an upload of bytes already here changes nothing but its expiry. */
export async function storeDataset(
  db: Db,
  name: string,
  imported: ImportedDataset,
  format: string,
  now = Date.now(),
): Promise<DatasetRow> {
  const source: DatasetSource = {
    format,
    shape: imported.shape,
    labelNames: imported.labelNames,
    scaling: imported.scaling,
    duplicates: imported.duplicates,
  };
  await db.tx(async (q) => {
    const inserted = await q.query(
      `INSERT INTO datasets (sha256, name, bytes, count, features, classes, class_counts, source, uploaded_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10) ON CONFLICT (sha256) DO NOTHING RETURNING 1`,
      [
        imported.sha256,
        name,
        imported.bytes.length,
        imported.count,
        imported.features,
        imported.classes,
        JSON.stringify(imported.classCounts),
        JSON.stringify(source),
        now,
        now + UNCLAIMED_DATASET_MS,
      ],
    );
    if (inserted.length === 0) {
      await q.query(
        'UPDATE datasets SET expires_at = greatest(expires_at, $2) WHERE sha256 = $1 AND expires_at IS NOT NULL',
        [imported.sha256, now + UNCLAIMED_DATASET_MS],
      );
      return;
    }
    for (let at = 0, idx = 0; at < imported.bytes.length; at += CHUNK_BYTES, idx++) {
      await q.query('INSERT INTO dataset_chunks (sha256, idx, data) VALUES ($1, $2, $3)', [
        imported.sha256,
        idx,
        imported.bytes.subarray(at, at + CHUNK_BYTES),
      ]);
    }
  });
  return (await datasetRow(db, imported.sha256))!;
}

export async function datasetRow(q: Queryable, sha256: Hex): Promise<DatasetRow | undefined> {
  const [row] = await q.query<DatasetRow>('SELECT * FROM datasets WHERE sha256 = $1', [sha256]);
  return row;
}

/** The whole binary, checked against its hash (a damaged row is never served). */
export async function storedDatasetBytes(q: Queryable, sha256: Hex): Promise<Uint8Array | undefined> {
  const chunks = await q.query<{ data: Uint8Array }>(
    'SELECT data FROM dataset_chunks WHERE sha256 = $1 ORDER BY idx',
    [sha256],
  );
  if (chunks.length === 0) return undefined;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.data.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c.data, at);
    at += c.data.length;
  }
  if (sha256Of(out) !== sha256) throw new Error(`dataset ${sha256}: stored bytes do not match the hash`);
  return out;
}

/** A search names the dataset: it is kept for as long as the search is. */
export async function claimDataset(q: Queryable, sha256: Hex): Promise<void> {
  await q.query('UPDATE datasets SET expires_at = NULL WHERE sha256 = $1', [sha256]);
}

/** Writes the dataset to this machine's `sponsored/` folder if it is not there yet. */
export async function ensureLocalDataset(q: Queryable, sha256: Hex): Promise<void> {
  if (existsSync(sponsoredDatasetPath(sha256))) return;
  const bytes = await storedDatasetBytes(q, sha256);
  if (!bytes) throw new Error(`dataset ${sha256} is not stored`);
  await saveSponsoredDataset(bytes);
}

/** Deletes uploads no search claimed in time; returns how many. */
export async function expireDatasets(q: Queryable, now = Date.now()): Promise<number> {
  const rows = await q.query(
    'DELETE FROM datasets WHERE expires_at IS NOT NULL AND expires_at < $1 RETURNING 1',
    [now],
  );
  return rows.length;
}

type FormValue = string | File | (string | File)[] | undefined;

async function fileOf(form: Record<string, FormValue>, field: string): Promise<Uint8Array> {
  const value = form[field];
  if (!(value instanceof File)) throw new Refusal(400, `the upload needs a file in the '${field}' field`);
  return new Uint8Array(await value.arrayBuffer());
}

function textOf(form: Record<string, FormValue>, field: string): string | undefined {
  const value = form[field];
  return typeof value === 'string' ? value : undefined;
}

/** POST /datasets: a multipart form (format, name, the format's files) converted, checked and stored. */
export async function uploadDataset(db: Db, form: Record<string, FormValue>): Promise<DatasetRow> {
  const format = textOf(form, 'format');
  if (!format || !(DATASET_FORMATS as readonly string[]).includes(format))
    throw new Refusal(400, `format: one of ${DATASET_FORMATS.join(', ')}`);
  const name = DatasetRefSchema.shape.name.safeParse(textOf(form, 'name') ?? '');
  if (!name.success) throw new Refusal(400, `name: ${name.error.issues[0].message}`);
  if (isDatasetName(name.data)) throw new Refusal(400, `name: '${name.data}' is a catalog dataset's name`);
  let upload: DatasetUpload;
  if (format === 'idx')
    upload = { format, images: await fileOf(form, 'images'), labels: await fileOf(form, 'labels') };
  else if (format === 'npy')
    upload = { format, features: await fileOf(form, 'features'), labels: await fileOf(form, 'labels') };
  else
    upload = {
      format: 'csv',
      csv: await fileOf(form, 'csv'),
      labelColumn: textOf(form, 'labelColumn') ?? 'label',
    };
  let imported: ImportedDataset;
  try {
    imported = importDataset(upload);
  } catch (err) {
    if (err instanceof DatasetError) throw new Refusal(422, err.message);
    throw err;
  }
  return storeDataset(db, name.data, imported, format);
}

export function datasetUploaded(row: DatasetRow): DatasetUploaded {
  return {
    sha256: row.sha256,
    name: row.name,
    bytes: row.bytes,
    count: row.count,
    features: row.features,
    classes: row.classes,
    classCounts: row.class_counts,
    source: row.source as unknown as Record<string, unknown>,
    url: `/api/v1/datasets/${row.sha256}`,
    expiresAt: row.expires_at,
  };
}
