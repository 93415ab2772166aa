/**
 * A sponsor's dataset, from the formats people have, to the canonical CDS1 binary (./format.ts):
 *
 * - **IDX** (as MNIST ships): an images file (u8, or any IDX number type) and a labels file (1-D).
 * - **CSV**: one row per example, a header row, the label in the column the sponsor names; every
 *   other column is a feature. Labels may be integers 0…255 or names (sorted, then numbered).
 * - **NumPy `.npy`** pairs: features (N × …, any numeric dtype, C order) and labels (N, integers).
 *
 * Features that are all integers in 0…255 are kept as they are; any others are scaled per feature
 * (column) linearly from [min, max] to 0…255 and rounded, and the scaling is returned with the
 * result, so a sponsor can apply the same to new inputs. Every error names the file, row or field.
 * Browser-safe (the Sponsor page previews with it; the coordinator converts with it).
 */
import Papa from 'papaparse';
import type { Hex } from 'viem';
import { SPONSOR_LIMITS } from '../protocol/search.ts';
import { encodeDataset, sha256Of } from './format.ts';

export class DatasetError extends Error {}

export const DATASET_FORMATS = ['idx', 'csv', 'npy'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export type DatasetUpload =
  | { format: 'idx'; images: Uint8Array; labels: Uint8Array }
  | { format: 'npy'; features: Uint8Array; labels: Uint8Array }
  | { format: 'csv'; csv: Uint8Array; labelColumn: string };

export interface ImportedDataset {
  bytes: Uint8Array;
  sha256: Hex;
  count: number;
  features: number;
  classes: number;
  classCounts: number[];
  /** An example's shape as the files gave it ([features] for CSV, [h, w] or [c, h, w] for IDX). */
  shape: number[];
  /** Label names in class order (CSV with named labels), else null. */
  labelNames: string[] | null;
  /** Per-feature linear scaling applied (value → round((v − min) · 255 / (max − min))), or null. */
  scaling: { min: number[]; max: number[] } | null;
  /** Examples whose features equal an earlier example's (row numbers from 0, the first few). */
  duplicates: { count: number; first: Array<[number, number]> };
}

interface Numeric {
  /** Dimensions, examples first. */
  dims: number[];
  values: ArrayLike<number>;
}

const fail = (message: string): never => {
  throw new DatasetError(message);
};

export function importDataset(upload: DatasetUpload): ImportedDataset {
  const total = Object.values(upload).reduce((n, v) => n + (v instanceof Uint8Array ? v.length : 0), 0);
  if (total > SPONSOR_LIMITS.maxUploadBytes)
    fail(`the upload is ${total} bytes; at most ${SPONSOR_LIMITS.maxUploadBytes} are accepted`);
  switch (upload.format) {
    case 'idx':
      return assemble(
        parseIdx(upload.images, 'images'),
        labelsOf(parseIdx(upload.labels, 'labels'), 'labels'),
      );
    case 'npy':
      return assemble(
        parseNpy(upload.features, 'features'),
        labelsOf(parseNpy(upload.labels, 'labels'), 'labels'),
      );
    case 'csv':
      return importCsv(upload.csv, upload.labelColumn);
    default:
      return fail(
        `unknown format '${(upload as { format: string }).format}' (known: ${DATASET_FORMATS.join(', ')})`,
      );
  }
}

// IDX: magic 0x00 0x00 <type> <ndims>, then ndims big-endian u32 sizes, then the values, big-endian.
const IDX_TYPES: Record<number, { bytes: number; read: (v: DataView, at: number) => number }> = {
  8: { bytes: 1, read: (v, at) => v.getUint8(at) },
  9: { bytes: 1, read: (v, at) => v.getInt8(at) },
  11: { bytes: 2, read: (v, at) => v.getInt16(at) },
  12: { bytes: 4, read: (v, at) => v.getInt32(at) },
  13: { bytes: 4, read: (v, at) => v.getFloat32(at) },
  14: { bytes: 8, read: (v, at) => v.getFloat64(at) },
};

export function parseIdx(bytes: Uint8Array, file: string): Numeric {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    fail(`${file}: not an IDX file (it must start with two zero bytes)`);
  const type = IDX_TYPES[bytes[2]] ?? fail(`${file}: unknown IDX value type 0x${bytes[2].toString(16)}`);
  const ndims = bytes[3];
  if (ndims < 1 || ndims > 4) fail(`${file}: ${ndims} dimensions; 1 to 4 are accepted`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) fail(`${file}: the header is cut short`);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + count * type.bytes)
    fail(
      `${file}: ${bytes.length} bytes, its header (${dims.join(' × ')}) says ${header + count * type.bytes}`,
    );
  if (type.bytes === 1 && bytes[2] === 0x08) return { dims, values: bytes.subarray(header) };
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = type.read(view, header + i * type.bytes);
  return { dims, values };
}

// .npy v1–v3: magic "\x93NUMPY", version, header length, a Python dict literal, then the data.
const NPY_DTYPES: Record<string, { bytes: number; read: (v: DataView, at: number, le: boolean) => number }> =
  {
    u1: { bytes: 1, read: (v, at) => v.getUint8(at) },
    i1: { bytes: 1, read: (v, at) => v.getInt8(at) },
    b1: { bytes: 1, read: (v, at) => v.getUint8(at) },
    u2: { bytes: 2, read: (v, at, le) => v.getUint16(at, le) },
    i2: { bytes: 2, read: (v, at, le) => v.getInt16(at, le) },
    u4: { bytes: 4, read: (v, at, le) => v.getUint32(at, le) },
    i4: { bytes: 4, read: (v, at, le) => v.getInt32(at, le) },
    i8: { bytes: 8, read: (v, at, le) => Number(v.getBigInt64(at, le)) },
    u8: { bytes: 8, read: (v, at, le) => Number(v.getBigUint64(at, le)) },
    f4: { bytes: 4, read: (v, at, le) => v.getFloat32(at, le) },
    f8: { bytes: 8, read: (v, at, le) => v.getFloat64(at, le) },
  };

export function parseNpy(bytes: Uint8Array, file: string): Numeric {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) fail(`${file}: not a .npy file`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (major < 1 || major > 3) fail(`${file}: .npy version ${major} is not supported`);
  const headerLength = lengthBytes === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes + headerLength;
  if (bytes.length < start) fail(`${file}: the header is cut short`);
  const header = new TextDecoder().decode(bytes.subarray(8 + lengthBytes, start));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z]\d)'/.exec(header) ?? fail(`${file}: no dtype in the header`);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  if (order?.[1] === 'True') fail(`${file}: Fortran-ordered arrays are not supported (save with C order)`);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header) ?? fail(`${file}: no shape in the header`);
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.length < 1 || dims.some((d) => !Number.isSafeInteger(d)))
    fail(`${file}: shape (${shape[1]}) is not an array of examples`);
  const dtype =
    NPY_DTYPES[descr[2]] ?? fail(`${file}: dtype ${descr[2]} is not supported (integers or floats)`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== start + count * dtype.bytes)
    fail(
      `${file}: ${bytes.length - start} data bytes, shape (${dims.join(', ')}) of ${descr[2]} needs ${count * dtype.bytes}`,
    );
  const le = descr[1] !== '>';
  if (descr[2] === 'u1' || descr[2] === 'b1') return { dims, values: bytes.subarray(start) };
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = dtype.read(view, start + i * dtype.bytes, le);
  return { dims, values };
}

function labelsOf(labels: Numeric, file: string): ArrayLike<number> {
  if (labels.dims.length !== 1 && !(labels.dims.length === 2 && labels.dims[1] === 1))
    fail(`${file}: labels must be one number per example, got shape ${labels.dims.join(' × ')}`);
  return labels.values;
}

function importCsv(csv: Uint8Array, labelColumn: string): ImportedDataset {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(csv);
  const parsed = Papa.parse<string[]>(text.replace(/^\uFEFF/, ''), { skipEmptyLines: 'greedy' });
  const bad = parsed.errors.find((e) => e.type !== 'Delimiter');
  if (bad) fail(`CSV row ${(bad.row ?? 0) + 1}: ${bad.message}`);
  const [header, ...rows] = parsed.data;
  if (!header || rows.length === 0) fail('CSV: a header row and at least one example are needed');
  const names = header.map((h) => h.trim());
  const labelAt = names.indexOf(labelColumn.trim());
  if (labelAt < 0) fail(`CSV: no column named '${labelColumn}' (columns: ${names.slice(0, 12).join(', ')}…)`);
  const width = names.length - 1;
  if (width < 1) fail('CSV: no feature columns besides the label');
  const values = new Float64Array(rows.length * width);
  const rawLabels: string[] = [];
  rows.forEach((row, r) => {
    if (row.length !== names.length)
      fail(`CSV row ${r + 2}: ${row.length} fields, the header has ${names.length}`);
    let k = 0;
    for (let c = 0; c < row.length; c++) {
      if (c === labelAt) {
        rawLabels.push(row[c].trim());
        continue;
      }
      const v = Number(row[c]);
      if (row[c].trim() === '' || !Number.isFinite(v))
        fail(`CSV row ${r + 2}, column '${names[c]}': '${row[c]}' is not a number`);
      values[r * width + k++] = v;
    }
  });
  const numeric = rawLabels.every((l) => /^\d{1,3}$/.test(l));
  const labelNames = numeric ? null : [...new Set(rawLabels)].sort();
  const labels = rawLabels.map((l) => (labelNames ? labelNames.indexOf(l) : Number(l)));
  return { ...assemble({ dims: [rows.length, width], values }, labels), labelNames };
}

/** Checks the examples and labels, quantises the features to u8 if needed, and encodes CDS1. */
function assemble(x: Numeric, labels: ArrayLike<number>): ImportedDataset {
  const count = x.dims[0];
  const shape = x.dims.slice(1);
  const features = shape.reduce((a, b) => a * b, 1);
  if (count < 2) fail(`features: ${count} examples; at least 2 are needed`);
  if (count > SPONSOR_LIMITS.maxExamples)
    fail(`features: ${count} examples; at most ${SPONSOR_LIMITS.maxExamples}`);
  if (shape.length === 0 || features < 1) fail('features: each example needs at least one feature');
  if (features > SPONSOR_LIMITS.maxFeatures)
    fail(`features: ${features} per example; at most ${SPONSOR_LIMITS.maxFeatures}`);
  if (labels.length !== count) fail(`labels: ${labels.length} labels for ${count} examples`);
  const label = new Uint8Array(count);
  let classes = 0;
  for (let i = 0; i < count; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= SPONSOR_LIMITS.maxClasses)
      fail(
        `labels: example ${i} has label ${l}; labels are whole numbers 0…${SPONSOR_LIMITS.maxClasses - 1}`,
      );
    label[i] = l;
    classes = Math.max(classes, l + 1);
  }
  if (classes < 2) fail('labels: every example has the same label; at least 2 classes are needed');
  const classCounts = new Array<number>(classes).fill(0);
  for (const l of label) classCounts[l]++;
  const empty = classCounts.indexOf(0);
  if (empty >= 0)
    fail(`labels: class ${empty} has no examples (labels must be 0…${classes - 1} with none missing)`);
  const { pixels, scaling } = quantise(x.values, count, features);
  const bytes = encodeDataset({ count, features, classes, pixels, labels: label });
  if (bytes.length > SPONSOR_LIMITS.maxDatasetBytes)
    fail(`the dataset is ${bytes.length} bytes as u8; at most ${SPONSOR_LIMITS.maxDatasetBytes}`);
  return {
    bytes,
    sha256: sha256Of(bytes),
    count,
    features,
    classes,
    classCounts,
    shape,
    labelNames: null,
    scaling,
    duplicates: duplicateRows(pixels, count, features),
  };
}

function quantise(values: ArrayLike<number>, count: number, features: number) {
  if (values instanceof Uint8Array) return { pixels: values, scaling: null };
  let bytesAlready = true;
  for (let i = 0; i < values.length && bytesAlready; i++) {
    const v = values[i];
    if (!Number.isFinite(v))
      fail(`features: example ${Math.floor(i / features)}, feature ${i % features} is ${v}`);
    bytesAlready = Number.isInteger(v) && v >= 0 && v <= 255;
  }
  const pixels = new Uint8Array(count * features);
  if (bytesAlready) {
    pixels.set(values as ArrayLike<number>);
    return { pixels, scaling: null };
  }
  const min = new Array<number>(features).fill(Number.POSITIVE_INFINITY);
  const max = new Array<number>(features).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < count * features; i++) {
    const f = i % features;
    const v = values[i];
    if (!Number.isFinite(v)) fail(`features: example ${Math.floor(i / features)}, feature ${f} is ${v}`);
    if (v < min[f]) min[f] = v;
    if (v > max[f]) max[f] = v;
  }
  for (let i = 0; i < count * features; i++) {
    const f = i % features;
    const span = max[f] - min[f];
    pixels[i] = span > 0 ? Math.round(((values[i] - min[f]) * 255) / span) : 0;
  }
  return { pixels, scaling: { min, max } };
}

/** Exact duplicate examples (same features), found by a string hash of each row. */
export function duplicateRows(pixels: Uint8Array, count: number, features: number) {
  const seen = new Map<string, number>();
  const first: Array<[number, number]> = [];
  let dupes = 0;
  for (let i = 0; i < count; i++) {
    const key = rowKey(pixels, i, features);
    const earlier = seen.get(key);
    if (earlier === undefined) seen.set(key, i);
    else {
      dupes++;
      if (first.length < 5) first.push([earlier, i]);
    }
  }
  return { count: dupes, first };
}

export function rowKey(pixels: Uint8Array, row: number, features: number): string {
  let key = '';
  const at = row * features;
  for (let j = 0; j < features; j += 4096)
    key += String.fromCharCode(...pixels.subarray(at + j, at + Math.min(features, j + 4096)));
  return key;
}
