/**
 * MNIST's own preprocessing for a drawn digit (LeCun et al.: "size normalised to fit in a 20×20 box
 * while preserving the aspect ratio ... centred in a 28×28 image by computing the centre of mass"),
 * as a pure function, so what the drawing pad feeds the model looks like what the model was trained on:
 *
 * 1. crop to the ink's bounding box;
 * 2. scale it so its longer side fills 20/28 of the grid, keeping the aspect ratio, averaging every
 *    source pixel a target pixel covers (an area filter: the anti-aliasing that gives MNIST its grey
 *    stroke edges);
 * 3. place it so its centre of mass lands on the grid's centre.
 */

/** A grey image, intensities in [0, 1], row-major. */
export interface GreyImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Pixels at or below this intensity count as background when cropping. */
const INK_THRESHOLD = 0.1;

/** The model input: `side`×`side` intensities in [0, 1] (28×28 for MNIST). */
export function preprocessDigit(image: GreyImage, side = 28): Float32Array {
  const out = new Float32Array(side * side);
  const box = inkBox(image);
  if (!box) return out;
  const fit = (side * 20) / 28;
  const scale = fit / Math.max(box.w, box.h);
  const tw = Math.max(1, Math.round(box.w * scale));
  const th = Math.max(1, Math.round(box.h * scale));
  const scaled = resampleArea(image, box, tw, th);
  const [cx, cy] = centreOfMass(scaled, tw, th);
  const ox = Math.round(side / 2 - cx);
  const oy = Math.round(side / 2 - cy);
  for (let y = 0; y < th; y++) {
    const ty = y + oy;
    if (ty < 0 || ty >= side) continue;
    for (let x = 0; x < tw; x++) {
      const tx = x + ox;
      if (tx >= 0 && tx < side) out[ty * side + tx] = scaled[y * tw + x];
    }
  }
  return out;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The bounding box of the ink, or undefined for a blank image. */
export function inkBox({ width, height, data }: GreyImage): Box | undefined {
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[y * width + x] <= INK_THRESHOLD) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? undefined : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

/** The box of `image` resampled to tw×th by area averaging, one axis at a time. */
function resampleArea(image: GreyImage, box: Box, tw: number, th: number): Float32Array {
  const rows = new Float32Array(box.h * tw);
  const line = new Float32Array(Math.max(box.w, box.h));
  for (let y = 0; y < box.h; y++) {
    const start = (box.y + y) * image.width + box.x;
    const resampled = resample1d(image.data.subarray(start, start + box.w), tw);
    rows.set(resampled, y * tw);
  }
  const out = new Float32Array(tw * th);
  for (let x = 0; x < tw; x++) {
    for (let y = 0; y < box.h; y++) line[y] = rows[y * tw + x];
    const col = resample1d(line.subarray(0, box.h), th);
    for (let y = 0; y < th; y++) out[y * tw + x] = col[y];
  }
  return out;
}

/** `src` averaged onto `n` equal cells: each cell is the mean of the source it covers, fractions included. */
export function resample1d(src: ArrayLike<number>, n: number): Float32Array {
  const out = new Float32Array(n);
  const step = src.length / n;
  for (let i = 0; i < n; i++) {
    const a = i * step;
    const b = a + step;
    let sum = 0;
    for (let k = Math.floor(a); k < Math.min(src.length, Math.ceil(b)); k++) {
      const overlap = Math.min(b, k + 1) - Math.max(a, k);
      if (overlap > 0) sum += src[k] * overlap;
    }
    out[i] = sum / step;
  }
  return out;
}

/** Intensity-weighted centre, in pixel units with pixel centres at +0.5. */
export function centreOfMass(pixels: ArrayLike<number>, width: number, height: number): [number, number] {
  let [m, mx, my] = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = pixels[y * width + x];
      m += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  return m === 0 ? [width / 2, height / 2] : [mx / m, my / m];
}

/** The red channel of RGBA pixels (the pad draws white on black) as a grey image. */
export function greyFromRgba(rgba: ArrayLike<number>, width: number, height: number): GreyImage {
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = rgba[i * 4] / 255;
  return { width, height, data };
}

/** The drawing pad's canvas side in pixels and its pen's radius (the pad draws round-capped lines). */
export const PAD_SIZE = 224;
export const PEN_RADIUS = PAD_SIZE / 18;
