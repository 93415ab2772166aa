/**
 * Writes examples as IDX, `.npy` and CSV files: the formats a sponsor uploads (./import.ts). The
 * tests and the e2e make their uploads with these; `cambrian` users have their own tools.
 */

/** An IDX file of u8 values (type 0x08), big-endian dimension sizes. */
export function writeIdx(dims: number[], values: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + values.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  for (const [i, d] of dims.entries()) view.setUint32(4 + 4 * i, d);
  out.set(values, 4 + 4 * dims.length);
  return out;
}

/** A version-1 `.npy` file: u1 for a Uint8Array, little-endian f4 for a Float32Array. */
export function writeNpy(shape: number[], values: Uint8Array | Float32Array): Uint8Array {
  const descr = values instanceof Uint8Array ? '|u1' : '<f4';
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

/** A CSV with a header `f0,…,f{n−1},<labelColumn>`, one row per example. */
export function writeCsv(
  features: number,
  values: ArrayLike<number>,
  labels: ArrayLike<number | string>,
  labelColumn = 'label',
): Uint8Array {
  const lines = [[...Array.from({ length: features }, (_, j) => `f${j}`), labelColumn].join(',')];
  for (let i = 0; i < labels.length; i++) {
    const row: Array<number | string> = [];
    for (let j = 0; j < features; j++) row.push(values[i * features + j]);
    row.push(labels[i]);
    lines.push(row.join(','));
  }
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}
