// WASM SIMD twins of the CPU reference's hot loops (AssemblyScript; built by scripts/build-wasm.mjs
// into src/engine/wasm/kernels-wasm.ts). Every pointer is a byte offset into the one imported
// memory; the TypeScript glue (src/engine/wasm/ops.ts) lays the operands out.
//
// Exactness: every product is i8 × i8 (|q| ≤ 128, so i16 lanes hold it), `i32x4.dot_i16x8_s` adds
// two such products exactly, and the accumulators wrap in i32 like the TypeScript twins' Int32Array
// stores, so any summation order gives the same bits. The scalar epilogues mirror ops/fixed.ts
// with i64 where TypeScript uses exact float64 (every product there is below 2^53).

export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------
// fixed-point helpers (ops/fixed.ts, ops/im2col.ts, ops/rng.ts)

/** clamp(round_half_even(v / 2^s), −127, 127) for 0 ≤ s ≤ 31. */
@inline function rne(v: i32, s: i32): i32 {
  let q = v;
  if (s > 0) {
    const fl = v >> s;
    const r = v & ((1 << s) - 1);
    const half = 1 << (s - 1);
    q = fl + (r > half || (r == half && (fl & 1) == 1) ? 1 : 0);
  }
  return q > 127 ? 127 : q < -127 ? -127 : q;
}

/** shrRound(a, k) for 1 ≤ k ≤ 31. */
@inline function shrRound(a: i32, k: i32): i32 {
  return (a >> k) + ((a >> (k - 1)) & 1);
}

/** fixed.ts rescale(a, k): k ≥ 0 saturating a · 2^k, k < 0 shrRound(a, −k) (0 past 31). */
@inline function rescale1(a: i32, k: i32): i32 {
  if (k < 0) {
    if (k <= -32) return 0;
    return shrRound(a, -k);
  }
  if (a == 0) return 0;
  if (k >= 31) return a > 0 ? 0x7fffffff : -0x80000000;
  const v = (<i64>a) << k;
  return v > 0x7fffffff ? 0x7fffffff : v < -0x80000000 ? -0x80000000 : <i32>v;
}

/** fixed.ts mulShr: ⌊(a·b + 2^(k−1)) / 2^k⌋ wrapped to i32 (exact: the TS caller keeps |a·b| < 2^52). */
@inline function mulShr(a: i64, b: i64, k: i64): i32 {
  if (k == 0) return <i32>(a * b);
  return <i32>((a * b + (<i64>1 << (k - 1))) >> k);
}

@inline function mix(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x7feb352d;
  h ^= h >>> 15;
  h *= 0x846ca68b;
  h ^= h >>> 16;
  return h;
}

@inline function absU(v: i32): u32 {
  return v < 0 ? <u32>(-v) : <u32>v;
}

// ---------------------------------------------------------------------------------------------
// activations (ops/activation.ts); codes: 0 identity, 1 relu, 2 leaky_relu, 3 hardtanh, 4 gelu

const ONE_Q16: i32 = 1 << 16;
const GELU_INV_SQRT2_Q16: i64 = 46341;
const GELU_B_Q16: i64 = 115933;
const GELU_A_Q16: i64 = -18927;

@inline function geluMag(u: i32): i64 {
  const au: i64 = u < 0 ? -(<i64>u) : <i64>u;
  const t: i64 = (au < GELU_B_Q16 ? au : GELU_B_Q16) - GELU_B_Q16;
  return <i64>mulShr(<i64>mulShr(t, t, 16), GELU_A_Q16, 16) + ONE_Q16;
}

@inline function activate1(act: i32, z: i32): i32 {
  if (act == 1) return z > 0 ? z : 0;
  if (act == 2) return z >= 0 ? z : z >> 3;
  if (act == 3) return z > ONE_Q16 ? ONE_Q16 : z < -ONE_Q16 ? -ONE_Q16 : z;
  if (act == 4) {
    const u = mulShr(<i64>z, GELU_INV_SQRT2_Q16, 16);
    const mag = geluMag(u);
    const L: i64 = u > 0 ? mag : u < 0 ? -mag : 0;
    return mulShr(<i64>z, ONE_Q16 + L, 17);
  }
  return z;
}

@inline function activationBackward1(act: i32, z: i32, g: i32): i32 {
  if (act == 1) return z > 0 ? g : 0;
  if (act == 2) return z > 0 ? g : shrRound(g, 3);
  if (act == 3) return z < ONE_Q16 && z > -ONE_Q16 ? g : 0;
  if (act == 4) {
    const u = mulShr(<i64>z, GELU_INV_SQRT2_Q16, 16);
    const au: i64 = u < 0 ? -(<i64>u) : <i64>u;
    const t: i64 = (au < GELU_B_Q16 ? au : GELU_B_Q16) - GELU_B_Q16;
    const mag = <i64>mulShr(<i64>mulShr(t, t, 16), GELU_A_Q16, 16) + ONE_Q16;
    const L: i64 = u > 0 ? mag : u < 0 ? -mag : 0;
    const dL = mulShr(t, 2 * GELU_A_Q16, 16);
    const grad: i64 = <i64>shrRound(<i32>(ONE_Q16 + L), 1) + <i64>mulShr(<i64>u, <i64>dL, 17);
    return mulShr(<i64>g, grad, 16);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// quantisation and scans (ops/quantize.ts)

export function maxAbs(x: usize, n: i32): u32 {
  let m: u32 = 0;
  for (let i = 0; i < n; i++) {
    const a = absU(load<i32>(x + (<usize>i << 2)));
    if (a > m) m = a;
  }
  return m;
}

@inline function clampNarrow(q: usize, a: v128, b: v128, c: v128, d: v128): void {
  const hi = i32x4.splat(127);
  const lo = i32x4.splat(-127);
  const a2 = i32x4.max_s(i32x4.min_s(a, hi), lo);
  const b2 = i32x4.max_s(i32x4.min_s(b, hi), lo);
  const c2 = i32x4.max_s(i32x4.min_s(c, hi), lo);
  const d2 = i32x4.max_s(i32x4.min_s(d, hi), lo);
  v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a2, b2), i16x8.narrow_i32x4_s(c2, d2)));
}

@inline function rneV(v: v128, s: i32, mask: v128, half: v128, one: v128): v128 {
  const fl = i32x4.shr_s(v, s);
  const r = v128.and(v, mask);
  const up = v128.or(i32x4.gt_s(r, half), v128.and(i32x4.eq(r, half), i32x4.eq(v128.and(fl, one), one)));
  return i32x4.sub(fl, up); // up lanes are −1
}

/** q_i = rne(x_i, s), i8 out. */
export function roundHalfEven(x: usize, q: usize, n: i32, s: i32): void {
  let i = 0;
  if (s == 0) {
    for (; i + 16 <= n; i += 16) {
      const p = x + (<usize>i << 2);
      clampNarrow(q + <usize>i, v128.load(p), v128.load(p, 16), v128.load(p, 32), v128.load(p, 48));
    }
  } else {
    const mask = i32x4.splat((1 << s) - 1);
    const half = i32x4.splat(1 << (s - 1));
    const one = i32x4.splat(1);
    for (; i + 16 <= n; i += 16) {
      const p = x + (<usize>i << 2);
      clampNarrow(
        q + <usize>i,
        rneV(v128.load(p), s, mask, half, one),
        rneV(v128.load(p, 16), s, mask, half, one),
        rneV(v128.load(p, 32), s, mask, half, one),
        rneV(v128.load(p, 48), s, mask, half, one),
      );
    }
  }
  for (; i < n; i++) store<i8>(q + <usize>i, <i8>rne(load<i32>(x + (<usize>i << 2)), s));
}

@inline function mixV(h: v128): v128 {
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x7feb352d));
  h = v128.xor(h, i32x4.shr_u(h, 15));
  h = i32x4.mul(h, i32x4.splat(<i32>0x846ca68b));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

@inline function stochV(v: v128, idx: v128, key: v128, s: i32, mask: v128): v128 {
  const r = v128.and(mixV(v128.xor(key, mixV(idx))), mask);
  return i32x4.add(i32x4.shr_s(v, s), i32x4.shr_u(i32x4.add(v128.and(v, mask), r), s));
}

/** quantize.ts roundStochastic: q_i = clamp((x >> s) + (((x & mask) + (rand(key, i) & mask)) >>> s)). */
export function roundStochastic(x: usize, q: usize, n: i32, s: i32, key: u32, mask: u32): void {
  if (s == 0) {
    roundHalfEven(x, q, n, 0);
    return;
  }
  let i = 0;
  const kv = i32x4.splat(<i32>key);
  const mv = i32x4.splat(<i32>mask);
  let idx = i32x4(0, 1, 2, 3);
  const four = i32x4.splat(4);
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = stochV(v128.load(p), idx, kv, s, mv);
    idx = i32x4.add(idx, four);
    const b = stochV(v128.load(p, 16), idx, kv, s, mv);
    idx = i32x4.add(idx, four);
    const c = stochV(v128.load(p, 32), idx, kv, s, mv);
    idx = i32x4.add(idx, four);
    const d = stochV(v128.load(p, 48), idx, kv, s, mv);
    idx = i32x4.add(idx, four);
    clampNarrow(q + <usize>i, a, b, c, d);
  }
  for (; i < n; i++) {
    const v = load<i32>(x + (<usize>i << 2));
    const r = mix(key ^ mix(<u32>i)) & mask;
    const v2 = (v >> s) + <i32>(((<u32>v & mask) + r) >>> s);
    store<i8>(q + <usize>i, <i8>(v2 > 127 ? 127 : v2 < -127 ? -127 : v2));
  }
}

// ---------------------------------------------------------------------------------------------
// epilogues (ops/forward.ts, ops/backward.ts, ops/col2im-backward.ts, ops/matmul.ts)

/**
 * z[b][j] = rescale(acc[b][j], shift) + shrRound(bias[j], 8) (wrapping); h = act(z) (+ hIn);
 * returns max |h|.
 */
export function forwardEpilogue(
  acc: usize,
  rows: i32,
  n: i32,
  shift: i32,
  bias: usize,
  z: usize,
  h: usize,
  hIn: usize,
  act: i32,
  residual: i32,
): u32 {
  let m: u32 = 0;
  for (let b = 0; b < rows; b++) {
    for (let j = 0; j < n; j++) {
      const o = (<usize>(b * n + j)) << 2;
      const zz = rescale1(load<i32>(acc + o), shift) + shrRound(load<i32>(bias + (<usize>j << 2)), 8);
      store<i32>(z + o, zz);
      let hh = activate1(act, zz);
      if (residual) hh += load<i32>(hIn + o);
      store<i32>(h + o, hh);
      const a = absU(hh);
      if (a > m) m = a;
    }
  }
  return m;
}

/** gh = rescale(acc, shift) (+ ghRes) → ghOut (acc may be ghOut); gz = gh ⊙ act′(z); returns max |gz|. */
export function backwardEpilogue(
  acc: usize,
  n: i32,
  shift: i32,
  ghRes: usize,
  residual: i32,
  z: usize,
  act: i32,
  ghOut: usize,
  gz: usize,
): u32 {
  let m: u32 = 0;
  let i = 0;
  if (shift > -32 && shift < 31 && act <= 1) {
    let mv = i32x4.splat(0);
    const zero = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      let gh = rescaleV(v128.load(acc + o), shift);
      if (residual) gh = i32x4.add(gh, v128.load(ghRes + o));
      v128.store(ghOut + o, gh);
      const g = act == 1 ? v128.and(gh, i32x4.gt_s(v128.load(z + o), zero)) : gh;
      v128.store(gz + o, g);
      mv = i32x4.max_u(mv, i32x4.abs(g));
    }
    m = hmaxU(mv);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let gh = rescale1(load<i32>(acc + o), shift);
    if (residual) gh += load<i32>(ghRes + o);
    store<i32>(ghOut + o, gh);
    const g = activationBackward1(act, load<i32>(z + o), gh);
    store<i32>(gz + o, g);
    const a = absU(g);
    if (a > m) m = a;
  }
  return m;
}

/** rescale1 on four lanes for −32 < k < 31 (k ≤ −32 and k ≥ 31 stay scalar). */
@inline function rescaleV(a: v128, k: i32): v128 {
  if (k < 0) return i32x4.add(i32x4.shr_s(a, -k), v128.and(i32x4.shr_s(a, -k - 1), i32x4.splat(1)));
  if (k == 0) return a;
  const gt = i32x4.gt_s(a, i32x4.splat(0x7fffffff >> k));
  const lt = i32x4.lt_s(a, i32x4.splat(-0x80000000 >> k));
  const shifted = i32x4.shl(a, k);
  return v128.bitselect(i32x4.splat(0x7fffffff), v128.bitselect(i32x4.splat(-0x80000000), shifted, lt), gt);
}

/** mulShr(a_i, b, k) on four lanes, 1 ≤ k ≤ 52 (products in i64, exact). */
@inline function mulShrV(a: v128, b: v128, round: v128, k: i32): v128 {
  const lo = i64x2.shr_s(i64x2.add(i64x2.extmul_low_i32x4_s(a, b), round), k);
  const hi = i64x2.shr_s(i64x2.add(i64x2.extmul_high_i32x4_s(a, b), round), k);
  return v128.shuffle<i32>(lo, hi, 0, 2, 4, 6);
}

@inline function hmaxU(m: v128): u32 {
  const a = i32x4.max_u(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  const b = i32x4.max_u(a, v128.shuffle<i32>(a, a, 1, 0, 3, 2));
  return <u32>i32x4.extract_lane(b, 0);
}

/** sgd.ts sgdStep, fused with the weight gradient's rescale (g_i = rescale(acc_i, shift)); returns max |w|. */
export function sgdRescaled(
  w: usize,
  v: usize,
  acc: usize,
  n: i32,
  shift: i32,
  lr: i32,
  mom: i32,
  wd: i32,
): u32 {
  let m: u32 = 0;
  let i = 0;
  if (shift > -32 && shift < 31) {
    const lrV = i32x4.splat(lr);
    const momV = i32x4.splat(mom);
    const wdV = i32x4.splat(wd);
    const r16 = i64x2.splat(1 << 15);
    const r24 = i64x2.splat(1 << 23);
    let mv = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const wi = v128.load(w + o);
      let gi = rescaleV(v128.load(acc + o), shift);
      if (wd != 0) gi = i32x4.add(gi, mulShrV(wi, wdV, r24, 24));
      const vi = i32x4.add(mulShrV(v128.load(v + o), momV, r16, 16), gi);
      v128.store(v + o, vi);
      const w2 = i32x4.sub(wi, mulShrV(vi, lrV, r16, 16));
      v128.store(w + o, w2);
      mv = i32x4.max_u(mv, i32x4.abs(w2));
    }
    m = hmaxU(mv);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const wi = load<i32>(w + o);
    let gi = rescale1(load<i32>(acc + o), shift);
    if (wd != 0) gi += mulShr(<i64>wi, <i64>wd, 24);
    const vi = mulShr(<i64>load<i32>(v + o), <i64>mom, 16) + gi;
    store<i32>(v + o, vi);
    const w2 = wi - mulShr(<i64>vi, <i64>lr, 16);
    store<i32>(w + o, w2);
    const a = absU(w2);
    if (a > m) m = a;
  }
  return m;
}

/** sgd.ts sgdStep on plain gradients (the bias). */
export function sgdPlain(w: usize, v: usize, g: usize, n: i32, lr: i32, mom: i32, wd: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const wi = load<i32>(w + o);
    let gi = load<i32>(g + o);
    if (wd != 0) gi += mulShr(<i64>wi, <i64>wd, 24);
    const vi = mulShr(<i64>load<i32>(v + o), <i64>mom, 16) + gi;
    store<i32>(v + o, vi);
    store<i32>(w + o, wi - mulShr(<i64>vi, <i64>lr, 16));
  }
}

/** out[j] += Σ_b x[b][j] (wrapping). */
export function addColumnSums(x: usize, rows: i32, n: i32, out: usize): void {
  for (let b = 0; b < rows; b++) {
    const xo = x + ((<usize>(b * n)) << 2);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const p = out + (<usize>j << 2);
      v128.store(p, i32x4.add(v128.load(p), v128.load(xo + (<usize>j << 2))));
    }
    for (; j < n; j++) {
      const p = out + (<usize>j << 2);
      store<i32>(p, load<i32>(p) + load<i32>(xo + (<usize>j << 2)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// max-pool (ops/maxpool.ts, ops/maxpool-backward.ts); strides in elements

export function maxpool(
  x: usize,
  y: usize,
  arg: usize,
  batch: i32,
  channels: i32,
  oh: i32,
  ow: i32,
  isb: i32,
  isc: i32,
  isy: i32,
  isx: i32,
  osb: i32,
  osc: i32,
  osy: i32,
  osx: i32,
): u32 {
  let m: u32 = 0;
  if (isc == 1 && osc == 1 && (channels & 3) == 0) {
    let mv = i32x4.splat(0);
    const one = i32x4.splat(1);
    const two = i32x4.splat(2);
    const three = i32x4.splat(3);
    for (let n = 0; n < batch; n++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const at0 = x + ((<usize>(n * isb + 2 * oy * isy + 2 * ox * isx)) << 2);
          const to0 = (<usize>(n * osb + oy * osy + ox * osx)) << 2;
          for (let c = 0; c < channels; c += 4) {
            const at = at0 + (<usize>c << 2);
            let best = v128.load(at);
            let a = i32x4.splat(0);
            const v1 = v128.load(at + ((<usize>isx) << 2));
            let gt = i32x4.gt_s(v1, best);
            best = v128.bitselect(v1, best, gt);
            a = v128.bitselect(one, a, gt);
            const v2 = v128.load(at + ((<usize>isy) << 2));
            gt = i32x4.gt_s(v2, best);
            best = v128.bitselect(v2, best, gt);
            a = v128.bitselect(two, a, gt);
            const v3 = v128.load(at + ((<usize>(isy + isx)) << 2));
            gt = i32x4.gt_s(v3, best);
            best = v128.bitselect(v3, best, gt);
            a = v128.bitselect(three, a, gt);
            const to = to0 + (<usize>c << 2);
            v128.store(y + to, best);
            v128.store(arg + to, a);
            mv = i32x4.max_u(mv, i32x4.abs(best));
          }
        }
    return hmaxU(mv);
  }
  for (let n = 0; n < batch; n++)
    for (let c = 0; c < channels; c++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const at = x + ((<usize>(n * isb + c * isc + 2 * oy * isy + 2 * ox * isx)) << 2);
          let best = load<i32>(at);
          let a = 0;
          const v1 = load<i32>(at + ((<usize>isx) << 2));
          if (v1 > best) {
            best = v1;
            a = 1;
          }
          const v2 = load<i32>(at + ((<usize>isy) << 2));
          if (v2 > best) {
            best = v2;
            a = 2;
          }
          const v3 = load<i32>(at + ((<usize>(isy + isx)) << 2));
          if (v3 > best) {
            best = v3;
            a = 3;
          }
          const to = (<usize>(n * osb + c * osc + oy * osy + ox * osx)) << 2;
          store<i32>(y + to, best);
          store<u32>(arg + to, a);
          const ab = absU(best);
          if (ab > m) m = ab;
        }
  return m;
}

/** Routes dy to each window's argmax (gh, in the input's layout), then gz = gh ⊙ act′(z); returns max |gz|. */
export function maxpoolBackward(
  dy: usize,
  arg: usize,
  z: usize,
  gh: usize,
  gz: usize,
  batch: i32,
  channels: i32,
  h: i32,
  w: i32,
  oh: i32,
  ow: i32,
  isb: i32,
  isc: i32,
  isy: i32,
  isx: i32,
  osb: i32,
  osc: i32,
  osy: i32,
  osx: i32,
  act: i32,
): u32 {
  const n = batch * channels * h * w;
  if (isc == 1 && osc == 1 && (channels & 3) == 0) {
    // gh is zero but at each window's argmax: zero it, then route dy window by window
    memory.fill(gh, 0, (<usize>n) << 2);
    const zero = i32x4.splat(0);
    for (let e = 0; e < batch; e++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const from0 = (<usize>(e * osb + oy * osy + ox * osx)) << 2;
          const to0 = gh + ((<usize>(e * isb + 2 * oy * isy + 2 * ox * isx)) << 2);
          for (let c = 0; c < channels; c += 4) {
            const from = from0 + (<usize>c << 2);
            const d = v128.load(dy + from);
            const a = v128.load(arg + from);
            const to = to0 + (<usize>c << 2);
            v128.store(to, v128.and(d, i32x4.eq(a, zero)));
            v128.store(to + ((<usize>isx) << 2), v128.and(d, i32x4.eq(a, i32x4.splat(1))));
            v128.store(to + ((<usize>isy) << 2), v128.and(d, i32x4.eq(a, i32x4.splat(2))));
            v128.store(to + ((<usize>(isy + isx)) << 2), v128.and(d, i32x4.eq(a, i32x4.splat(3))));
          }
        }
  } else
  for (let e = 0; e < batch; e++)
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const oy = y >> 1;
          const ox = x >> 1;
          let g = 0;
          if (oy < oh && ox < ow) {
            const at = (<usize>(e * osb + c * osc + oy * osy + ox * osx)) << 2;
            if (load<u32>(arg + at) == <u32>((y & 1) * 2 + (x & 1))) g = load<i32>(dy + at);
          }
          store<i32>(gh + ((<usize>(e * isb + c * isc + y * isy + x * isx)) << 2), g);
        }
  let m: u32 = 0;
  let i = 0;
  if (act <= 1) {
    let mv = i32x4.splat(0);
    const zero = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const g0 = v128.load(gh + o);
      const g = act == 1 ? v128.and(g0, i32x4.gt_s(v128.load(z + o), zero)) : g0;
      v128.store(gz + o, g);
      mv = i32x4.max_u(mv, i32x4.abs(g));
    }
    m = hmaxU(mv);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = activationBackward1(act, load<i32>(z + o), load<i32>(gh + o));
    store<i32>(gz + o, g);
    const a = absU(g);
    if (a > m) m = a;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// operand layout for the GEMMs (i16 operands; "pairs": two consecutive reduction indices)

/** dst[r][c] (i16, row stride ld ≥ cols, zero beyond cols) = src[r][c] (i8). */
export function widenRows(src: usize, rows: i32, cols: i32, ld: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>(r * cols);
    const d = dst + ((<usize>(r * ld)) << 1);
    let c = 0;
    for (; c + 8 <= cols; c += 8) v128.store(d + (<usize>c << 1), v128.load8x8_s(s + <usize>c));
    for (; c < cols; c++) store<i16>(d + (<usize>c << 1), <i16>load<i8>(s + <usize>c));
    for (; c < ld; c++) store<i16>(d + (<usize>c << 1), 0);
  }
}

/** dst[c][r] (i16, [dRows][ld], zero past rows and cols) = src[r][c] (i8 [rows][cols]). */
export function transposeWiden(src: usize, rows: i32, cols: i32, dRows: i32, ld: i32, dst: usize): void {
  memory.fill(dst, 0, (<usize>(dRows * ld)) << 1);
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>(r * cols);
    for (let c = 0; c < cols; c++) store<i16>(dst + ((<usize>(c * ld + r)) << 1), <i16>load<i8>(s + <usize>c));
  }
}

/**
 * Packs a right-hand operand for convGemm: dst[((run·LP + lp)·NV + col)·2 + h] (i16) =
 * src[runOff[run] + (2lp + h)·lStride + col·colStride] (i8) for 2lp + h < L and col < ncols, else 0;
 * LP = ⌈L/2⌉, NV = ncols rounded up to 8.
 */
export function packPairs(
  src: usize,
  runOff: usize,
  runs: i32,
  L: i32,
  lStride: i32,
  colStride: i32,
  ncols: i32,
  dst: usize,
): void {
  const LP = (L + 1) >> 1;
  const NV = (ncols + 7) & ~7;
  let d = dst;
  if (colStride == 1) {
    for (let run = 0; run < runs; run++) {
      const ro = load<i32>(runOff + (<usize>run << 2));
      for (let lp = 0; lp < LP; lp++) {
        const l0 = 2 * lp;
        const has1 = l0 + 1 < L;
        const s0 = src + <usize>(ro + l0 * lStride);
        const s1 = src + <usize>(ro + (l0 + 1) * lStride);
        let col = 0;
        for (; col + 8 <= ncols; col += 8) {
          const v0 = v128.load8x8_s(s0 + <usize>col);
          const v1 = has1 ? v128.load8x8_s(s1 + <usize>col) : i32x4.splat(0);
          v128.store(d, v128.shuffle<i16>(v0, v1, 0, 8, 1, 9, 2, 10, 3, 11));
          v128.store(d, v128.shuffle<i16>(v0, v1, 4, 12, 5, 13, 6, 14, 7, 15), 16);
          d += 32;
        }
        for (; col < NV; col++) {
          let a: i32 = 0;
          let b: i32 = 0;
          if (col < ncols) {
            a = <i32>load<i8>(s0 + <usize>col);
            if (has1) b = <i32>load<i8>(s1 + <usize>col);
          }
          store<i16>(d, <i16>a);
          store<i16>(d, <i16>b, 2);
          d += 4;
        }
      }
    }
    return;
  }
  for (let run = 0; run < runs; run++) {
    const ro = load<i32>(runOff + (<usize>run << 2));
    for (let lp = 0; lp < LP; lp++) {
      for (let col = 0; col < NV; col++) {
        for (let h = 0; h < 2; h++) {
          const l = 2 * lp + h;
          let v: i32 = 0;
          if (l < L && col < ncols) v = <i32>load<i8>(src + <usize>(ro + l * lStride + col * colStride));
          store<i16>(d, <i16>v);
          d += 2;
        }
      }
    }
  }
}

/** table[(b·OH + oy)·OW + ox] = b·bStride + oy·yStride + ox·xStride (i32). */
export function rowBases(table: usize, B: i32, OH: i32, OW: i32, bStride: i32, yStride: i32, xStride: i32): void {
  let t = table;
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        store<i32>(t, b * bStride + oy * yStride + ox * xStride);
        t += 4;
      }
}

/**
 * The zero-padded i16 image of a conv input, hwc: dst[b][y + pad][x + pad][c] = rne(x[b·sb + c·sc +
 * y·sy + x·sx], shift), zero on the border, plus 64 zero bytes of slack after it.
 */
export function padImage(
  x: usize,
  B: i32,
  C: i32,
  H: i32,
  W: i32,
  sb: i32,
  sc: i32,
  sy: i32,
  sx: i32,
  pad: i32,
  shift: i32,
  dst: usize,
): void {
  const Hp = H + 2 * pad;
  const Wp = W + 2 * pad;
  memory.fill(dst, 0, ((<usize>(B * Hp * Wp * C)) << 1) + 64);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < H; y++)
      for (let xx = 0; xx < W; xx++) {
        const d = dst + ((<usize>(((b * Hp + y + pad) * Wp + xx + pad) * C)) << 1);
        const s = b * sb + y * sy + xx * sx;
        for (let c = 0; c < C; c++)
          store<i16>(d + (<usize>c << 1), <i16>rne(load<i32>(x + ((<usize>(s + c * sc)) << 2)), shift));
      }
}

/**
 * The error image of a conv's input gradient, hwc i16 [B][U][V][N]: e8[b][oy][ox][n] placed at
 * (oy·s + off, ox·s + off), zero elsewhere (dilated by the stride, padded by off = k − 1 − pad), plus slack.
 */
export function dilateImage(e8: usize, B: i32, OH: i32, OW: i32, N: i32, s: i32, U: i32, V: i32, off: i32, dst: usize): void {
  memory.fill(dst, 0, ((<usize>(B * U * V * N)) << 1) + 64);
  let src = e8;
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const d = dst + ((<usize>(((b * U + oy * s + off) * V + ox * s + off) * N)) << 1);
        let n = 0;
        for (; n + 8 <= N; n += 8) v128.store(d + (<usize>n << 1), v128.load8x8_s(src + <usize>n));
        for (; n < N; n++) store<i16>(d + (<usize>n << 1), <i16>load<i8>(src + <usize>n));
        src += <usize>N;
      }
}

// ---------------------------------------------------------------------------------------------
// the GEMMs

@inline function storePartial(p: usize, v: v128, count: i32): void {
  if (count >= 4) {
    v128.store(p, v);
    return;
  }
  if (count > 0) store<i32>(p, i32x4.extract_lane(v, 0));
  if (count > 1) store<i32>(p + 4, i32x4.extract_lane(v, 1));
  if (count > 2) store<i32>(p + 8, i32x4.extract_lane(v, 2));
}

/**
 * out[m][n] = Σ_run Σ_{l<L} img[rowBase[m] + runOff[run] + l] · W[run][l][n] for m < M, n < N (row
 * stride ldo), with W packed by packPairs (zero weights past L, so a pair may read one element past a
 * run). Rows go four at a time, columns eight (two i32x4 accumulators each).
 */
export function convGemm(
  img: usize,
  rowBase: usize,
  M: i32,
  runOff: usize,
  runs: i32,
  L: i32,
  bp: usize,
  N: i32,
  out: usize,
  ldo: i32,
): void {
  const LP = (L + 1) >> 1;
  const NV = (N + 7) & ~7;
  const bStep = <usize>(NV << 2);
  for (let m0 = 0; m0 < M; m0 += 4) {
    const last = M - 1;
    const r0 = img + ((<usize>load<i32>(rowBase + (<usize>m0 << 2))) << 1);
    const r1 = img + ((<usize>load<i32>(rowBase + (<usize>min(m0 + 1, last) << 2))) << 1);
    const r2 = img + ((<usize>load<i32>(rowBase + (<usize>min(m0 + 2, last) << 2))) << 1);
    const r3 = img + ((<usize>load<i32>(rowBase + (<usize>min(m0 + 3, last) << 2))) << 1);
    for (let nb = 0; nb < NV; nb += 8) {
      let c00 = i32x4.splat(0);
      let c01 = i32x4.splat(0);
      let c10 = i32x4.splat(0);
      let c11 = i32x4.splat(0);
      let c20 = i32x4.splat(0);
      let c21 = i32x4.splat(0);
      let c30 = i32x4.splat(0);
      let c31 = i32x4.splat(0);
      let b = bp + (<usize>nb << 2);
      for (let run = 0; run < runs; run++) {
        const ro = (<usize>load<i32>(runOff + (<usize>run << 2))) << 1;
        let a0 = r0 + ro;
        let a1 = r1 + ro;
        let a2 = r2 + ro;
        let a3 = r3 + ro;
        for (let lp = 0; lp < LP; lp++) {
          const b0 = v128.load(b);
          const b1 = v128.load(b, 16);
          const x0 = v128.load32_splat(a0);
          const x1 = v128.load32_splat(a1);
          const x2 = v128.load32_splat(a2);
          const x3 = v128.load32_splat(a3);
          c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x0, b0));
          c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x0, b1));
          c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x1, b0));
          c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x1, b1));
          c20 = i32x4.add(c20, i32x4.dot_i16x8_s(x2, b0));
          c21 = i32x4.add(c21, i32x4.dot_i16x8_s(x2, b1));
          c30 = i32x4.add(c30, i32x4.dot_i16x8_s(x3, b0));
          c31 = i32x4.add(c31, i32x4.dot_i16x8_s(x3, b1));
          a0 += 4;
          a1 += 4;
          a2 += 4;
          a3 += 4;
          b += bStep;
        }
      }
      const w0 = N - nb;
      const w1 = N - nb - 4;
      const o = out + ((<usize>(m0 * ldo + nb)) << 2);
      const ld = (<usize>ldo) << 2;
      storePartial(o, c00, w0);
      storePartial(o + 16, c01, w1);
      if (m0 + 1 < M) {
        storePartial(o + ld, c10, w0);
        storePartial(o + ld + 16, c11, w1);
      }
      if (m0 + 2 < M) {
        storePartial(o + 2 * ld, c20, w0);
        storePartial(o + 2 * ld + 16, c21, w1);
      }
      if (m0 + 3 < M) {
        storePartial(o + 3 * ld, c30, w0);
        storePartial(o + 3 * ld + 16, c31, w1);
      }
    }
  }
}

@inline function addLanes(acc: usize, v: v128, l0: i32, L: i32, kRunBase: i32, kLMul: i32, N: i32, n: i32): void {
  for (let lane = 0; lane < 4; lane++) {
    const l = l0 + lane;
    if (l >= L) return;
    let x: i32;
    if (lane == 0) x = i32x4.extract_lane(v, 0);
    else if (lane == 1) x = i32x4.extract_lane(v, 1);
    else if (lane == 2) x = i32x4.extract_lane(v, 2);
    else x = i32x4.extract_lane(v, 3);
    const p = acc + ((<usize>((kRunBase + l * kLMul) * N + n)) << 2);
    store<i32>(p, load<i32>(p) + x);
  }
}

/**
 * acc[k][n] += Σ_m img[rowBase[m] + runOff[run] + l] · eT[n][m] with k = run·kRunMul + l·kLMul, for
 * l < L, n < N (wrapping). rowBase has Mp = M rounded up to even entries; eT is i16 [⌈N/4⌉·4][Mp],
 * zero past M and N. The reduction over m goes two rows at a time: the two rows' image runs are
 * interleaved into pairs (lanes along l, eight at a time) and dotted with the splatted pair of eT.
 */
export function convGemmT(
  img: usize,
  rowBase: usize,
  Mp: i32,
  runOff: usize,
  runs: i32,
  L: i32,
  eT: usize,
  N: i32,
  acc: usize,
  kRunMul: i32,
  kLMul: i32,
): void {
  const eRow = <usize>(Mp << 1);
  for (let run = 0; run < runs; run++) {
    const ro = (<usize>load<i32>(runOff + (<usize>run << 2))) << 1;
    for (let lb = 0; lb < L; lb += 8) {
      const base = img + ro + (<usize>lb << 1);
      for (let nb = 0; nb < N; nb += 4) {
        let c0l = i32x4.splat(0);
        let c0h = i32x4.splat(0);
        let c1l = i32x4.splat(0);
        let c1h = i32x4.splat(0);
        let c2l = i32x4.splat(0);
        let c2h = i32x4.splat(0);
        let c3l = i32x4.splat(0);
        let c3h = i32x4.splat(0);
        let e0 = eT + <usize>nb * eRow;
        let e1 = e0 + eRow;
        let e2 = e1 + eRow;
        let e3 = e2 + eRow;
        let t = rowBase;
        for (let mp = 0; mp < Mp; mp += 2) {
          const p0 = v128.load(base + ((<usize>load<i32>(t)) << 1));
          const p1 = v128.load(base + ((<usize>load<i32>(t, 4)) << 1));
          const lo = v128.shuffle<i16>(p0, p1, 0, 8, 1, 9, 2, 10, 3, 11);
          const hi = v128.shuffle<i16>(p0, p1, 4, 12, 5, 13, 6, 14, 7, 15);
          const x0 = v128.load32_splat(e0);
          const x1 = v128.load32_splat(e1);
          const x2 = v128.load32_splat(e2);
          const x3 = v128.load32_splat(e3);
          c0l = i32x4.add(c0l, i32x4.dot_i16x8_s(lo, x0));
          c0h = i32x4.add(c0h, i32x4.dot_i16x8_s(hi, x0));
          c1l = i32x4.add(c1l, i32x4.dot_i16x8_s(lo, x1));
          c1h = i32x4.add(c1h, i32x4.dot_i16x8_s(hi, x1));
          c2l = i32x4.add(c2l, i32x4.dot_i16x8_s(lo, x2));
          c2h = i32x4.add(c2h, i32x4.dot_i16x8_s(hi, x2));
          c3l = i32x4.add(c3l, i32x4.dot_i16x8_s(lo, x3));
          c3h = i32x4.add(c3h, i32x4.dot_i16x8_s(hi, x3));
          t += 8;
          e0 += 4;
          e1 += 4;
          e2 += 4;
          e3 += 4;
        }
        const kRunBase = run * kRunMul;
        addLanes(acc, c0l, lb, L, kRunBase, kLMul, N, nb);
        addLanes(acc, c0h, lb + 4, L, kRunBase, kLMul, N, nb);
        if (nb + 1 < N) {
          addLanes(acc, c1l, lb, L, kRunBase, kLMul, N, nb + 1);
          addLanes(acc, c1h, lb + 4, L, kRunBase, kLMul, N, nb + 1);
        }
        if (nb + 2 < N) {
          addLanes(acc, c2l, lb, L, kRunBase, kLMul, N, nb + 2);
          addLanes(acc, c2h, lb + 4, L, kRunBase, kLMul, N, nb + 2);
        }
        if (nb + 3 < N) {
          addLanes(acc, c3l, lb, L, kRunBase, kLMul, N, nb + 3);
          addLanes(acc, c3h, lb + 4, L, kRunBase, kLMul, N, nb + 3);
        }
      }
    }
  }
}
