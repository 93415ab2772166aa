/**
 * Twin of transpose.wgsl: y[b][c][r] = x[b][r][c] for each of `batch` i32 matrices [rows][cols]. It is
 * `flatten`'s layout op (docs/ARITHMETIC.md, "Layouts"): forward hwc → chw is rows = H·W, cols = C;
 * the gradient back is rows = C, cols = H·W. A pure permutation: no arithmetic, so the max-abs slot
 * of the tensor before it stays valid after it.
 */
export interface TransposeParams {
  [key: string]: number | boolean | string | null;
  batch: number;
  rows: number;
  cols: number;
  /** The kernel's variant (TILED: through workgroup memory); the result is the same. */
  tiled: boolean;
}

export function transpose(p: TransposeParams, b: { x: Int32Array; y: Int32Array }): void {
  const { rows, cols } = p;
  for (let e = 0; e < p.batch; e++) {
    const base = e * rows * cols;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) b.y[base + c * rows + r] = b.x[base + r * cols + c];
  }
}
