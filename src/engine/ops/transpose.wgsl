// Batched transpose (twin: transpose.ts): y[b][c][r] = x[b][r][c], x being `batch` i32 matrices
// [rows][cols]. flatten's layout op ([B][H·W][C] → [B][C][H·W] and back for the gradient).
// TILED: a 16×16 tile goes through workgroup memory so both the reads and the writes are coalesced
// (the textbook transpose); one barrier per workgroup. Without TILED each thread copies one element
// directly (barrier-free, for SwiftShader, where a barrier costs a fiber switch per workgroup).
// Dispatch: (ceil(cols / 16), ceil(rows / 16) · batch) workgroups.

override TILED: bool = true;

struct Params {
  batch: u32,
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;

// 16 × 17: the padding column keeps a tile column's reads in different banks.
var<workgroup> tile: array<i32, 272>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tiles_y = (p.rows + 15u) / 16u;
  let base = (wg.y / tiles_y) * p.rows * p.cols;
  let ty = wg.y % tiles_y;
  let r = ty * 16u + lid.y;
  let c = wg.x * 16u + lid.x;
  if (!TILED) {
    if (r < p.rows && c < p.cols) { y[base + c * p.rows + r] = x[base + r * p.cols + c]; }
    return;
  }
  if (r < p.rows && c < p.cols) { tile[lid.y * 17u + lid.x] = x[base + r * p.cols + c]; }
  workgroupBarrier();
  // Thread (lid.x, lid.y) now writes output row c2 = tile column lid.y, element r2 = tile row lid.x.
  let c2 = wg.x * 16u + lid.y;
  let r2 = ty * 16u + lid.x;
  if (r2 < p.rows && c2 < p.cols) { y[base + c2 * p.rows + r2] = tile[lid.x * 17u + lid.y]; }
}
