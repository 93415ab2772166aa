/**
 * How the implicit-GEMM conv kernels (conv-forward, conv-input-grad, conv-weight-grad) spread one
 * GEMM over workgroups. None of this changes a bit: integer addition is associative, so any
 * blocking, tiling or split of the sums gives the same integers; it only decides speed, and a GPU is
 * where to tune it (docs/KERNELS.md, "Implicit-GEMM conv"). Every value here is correct on every size.
 *
 * A workgroup is 64 threads, each computing 4 rows × 4·nb columns of the GEMM in registers
 * (nb ≤ 4 blocks of 4): `wgN` threads along the columns, `wgM` along the rows, and (weight gradient
 * only) 64 / (wgM·wgN) groups that split the reduction between them. `tiled`: per chunk of `bk`
 * packed words along the reduction, the workgroup first stages its rows' and columns' operand words
 * in workgroup memory (each gathered once, then read by every thread that needs it); otherwise each
 * thread gathers its own words, each serving its 4·nb columns (no barriers: SwiftShader pays a fiber
 * switch per barrier, a GPU pays little).
 */
export interface ConvTiling {
  /** Column blocks of 4 per thread, 1 to 4. */
  nb: number;
  wgN: number;
  wgM: number;
  tiled: boolean;
  bk: number;
}

/** Threads per workgroup of every conv kernel. */
export const CONV_THREADS = 64;
/** Workgroup memory a kernel may use (WebGPU's guaranteed minimum). */
export const WORKGROUP_BYTES = 16384;

const pow2AtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * A tiling for a GEMM of `rows` × `cols` outputs. Untiled (SwiftShader), a thread takes up to 16
 * columns so it gathers each row operand once for all of them; tiled (GPUs), 4 columns per thread
 * and up to 8 threads share each staged row operand. The rows get the rest of the 64 threads (with
 * `splitRest`, the weight gradient, at most as many as they need: the spare ones split the sum).
 */
export function chooseTiling(rows: number, cols: number, tiled: boolean, splitRest = false): ConvTiling {
  const blocks = Math.ceil(cols / 4);
  const nb = tiled ? 1 : Math.min(4, blocks);
  const wgN = Math.min(8, pow2AtLeast(Math.ceil(blocks / nb)));
  const maxM = CONV_THREADS / wgN;
  const wgM = splitRest ? Math.min(maxM, pow2AtLeast(Math.ceil(rows / 4))) : maxM;
  return { nb, wgN, wgM, tiled, bk: 4 };
}

/** Workgroup memory bytes of a tiling: row contexts (vec4<i32>), the A tile and the B tile. */
export function tilingBytes(t: ConvTiling, contextRows: number): number {
  return 16 * contextRows + 4 * t.bk * 4 * (t.wgM + t.nb * t.wgN);
}

export function checkTiling(t: ConvTiling, contextRows = 4 * t.wgM): void {
  const pow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
  if (!pow2(t.wgN) || !pow2(t.wgM) || t.wgN * t.wgM > CONV_THREADS)
    throw new Error(`conv tiling: wgN ${t.wgN} × wgM ${t.wgM} must be powers of two, at most 64 threads`);
  if (!Number.isInteger(t.bk) || t.bk < 1) throw new Error(`conv tiling: bk ${t.bk} must be ≥ 1`);
  if (![1, 2, 3, 4].includes(t.nb)) throw new Error(`conv tiling: nb ${t.nb} must be 1 to 4`);
  if (t.tiled && tilingBytes(t, contextRows) > WORKGROUP_BYTES)
    throw new Error(
      `conv tiling: ${tilingBytes(t, contextRows)} bytes of workgroup memory, at most ${WORKGROUP_BYTES}`,
    );
}

/** Random valid tilings for the parity tests. */
export function sampleTiling(draw: (n: number) => number, splitRest = false): ConvTiling {
  const wgN = 2 ** draw(4);
  const wgM = splitRest ? 2 ** draw(7 - Math.log2(wgN)) : CONV_THREADS / wgN;
  return { nb: 1 + draw(4), wgN, wgM, tiled: draw(2) === 1, bk: [1, 2, 3, 4, 8][draw(5)] };
}
