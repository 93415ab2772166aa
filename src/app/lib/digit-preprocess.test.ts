/**
 * The drawing pad's preprocessing: unit checks of the MNIST steps, and the end-to-end claim that
 * matters: digits 0–9 drawn as strokes on the pad (rasterised as the pad's round-capped pen draws them)
 * are read correctly by the reference model (specs/reference-mlp.json trained on the CPU reference and
 * run through the same float forward pass its ONNX export computes).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../data/node.ts';
import { trainAndExport } from '../../onnx/export.ts';
import { forwardFloat, weightsFromParams } from '../../onnx/mlp.ts';
import { parseTaskSpec, type TaskSpec } from '../../protocol/spec.ts';
import {
  centreOfMass,
  type GreyImage,
  inkBox,
  PAD_SIZE,
  PEN_RADIUS,
  preprocessDigit,
  resample1d,
} from './digit-preprocess.ts';

type Point = [number, number];

/** Strokes as the pad draws them: round-capped lines of radius PEN_RADIUS, anti-aliased edges. */
function rasterise(strokes: Point[][]): GreyImage {
  const data = new Float32Array(PAD_SIZE * PAD_SIZE);
  const segments = strokes.flatMap((s) => s.slice(1).map((p, i) => [s[i], p] as const));
  for (let y = 0; y < PAD_SIZE; y++) {
    for (let x = 0; x < PAD_SIZE; x++) {
      const d = Math.min(...segments.map(([a, b]) => distanceToSegment([x + 0.5, y + 0.5], a, b)));
      data[y * PAD_SIZE + x] = Math.min(1, Math.max(0, PEN_RADIUS + 0.5 - d));
    }
  }
  return { width: PAD_SIZE, height: PAD_SIZE, data };
}

function distanceToSegment(p: Point, a: Point, b: Point): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2));
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/** Points on an ellipse from angle a0 to a1 (degrees, clockwise on screen: 0 right, 90 down). */
function arc(cx: number, cy: number, rx: number, ry: number, a0: number, a1: number, n = 24): Point[] {
  return Array.from({ length: n + 1 }, (_, i) => {
    const a = ((a0 + ((a1 - a0) * i) / n) * Math.PI) / 180;
    return [cx + rx * Math.cos(a), cy + ry * Math.sin(a)] as Point;
  });
}

/** How a person might draw each digit on the 224 px pad, not centred and not full size. */
const DIGITS: Point[][][] = [
  [arc(110, 112, 42, 68, 270, 630)],
  [
    [
      [118, 40],
      [112, 185],
    ],
  ],
  [[...arc(108, 82, 40, 36, 190, 390), [70, 180], [160, 180]]],
  [arc(104, 78, 38, 32, 200, 450), arc(104, 142, 44, 38, 270, 520)],
  [
    [
      [128, 40],
      [62, 138],
      [160, 138],
    ],
    [
      [130, 80],
      [130, 188],
    ],
  ],
  [[[150, 44], [84, 44], [78, 102], ...arc(108, 138, 44, 42, 215, 500)]],
  [[[142, 42], [104, 70], [80, 112], [74, 150], ...arc(110, 150, 36, 36, 180, 540)]],
  [
    [
      [62, 48],
      [160, 48],
      [98, 190],
    ],
  ],
  [arc(112, 74, 32, 30, 0, 360), arc(112, 144, 42, 40, 0, 360)],
  [[...arc(108, 80, 36, 34, 0, 360), [144, 80], [138, 190]]],
];

describe('MNIST preprocessing', () => {
  it('averages the source a target cell covers, fractions included', () => {
    expect(Array.from(resample1d([1, 0, 1, 0], 2))).toEqual([0.5, 0.5]);
    const [a, b] = resample1d([0, 0, 1], 2);
    expect(a).toBe(0);
    expect(b).toBeCloseTo(2 / 3, 6);
  });

  it('fits the ink into 20×20 keeping its aspect ratio, centred by its centre of mass', () => {
    // A 40×120 bar in the top-left corner of the pad.
    const data = new Float32Array(PAD_SIZE * PAD_SIZE);
    for (let y = 10; y < 130; y++) for (let x = 5; x < 45; x++) data[y * PAD_SIZE + x] = 1;
    const out = preprocessDigit({ width: PAD_SIZE, height: PAD_SIZE, data });
    const box = inkBox({ width: 28, height: 28, data: out });
    expect(box).toMatchObject({ w: 7, h: 20 });
    const [cx, cy] = centreOfMass(out, 28, 28);
    expect(Math.abs(cx - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(cy - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.max(...out)).toBeLessThanOrEqual(1);
  });

  it('leaves a blank drawing blank', () => {
    const blank = { width: 10, height: 10, data: new Float32Array(100) };
    expect(preprocessDigit(blank).every((v) => v === 0)).toBe(true);
  });
});

describe('digits drawn on the pad, read by the reference model', () => {
  let classify: (pixels: Float32Array) => number;

  beforeAll(async () => {
    const path = join(import.meta.dirname, '../../../specs/reference-mlp.json');
    const spec: TaskSpec = parseTaskSpec(JSON.parse(readFileSync(path, 'utf8')));
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const { params } = await trainAndExport(spec, dataset, { backend: 'cpu' });
    const layers = weightsFromParams(spec.model, params, 'int8');
    classify = (pixels) => {
      const logits = forwardFloat(spec.model, layers, pixels, 1);
      return logits.indexOf(Math.max(...logits));
    };
  }, 300_000);

  it('reads at least 8 of the 10 digits', () => {
    const read = DIGITS.map((strokes) => classify(preprocessDigit(rasterise(strokes))));
    const right = read.filter((d, i) => d === i).length;
    console.log(`the reference model read ${read.join(' ')} for 0 1 2 3 4 5 6 7 8 9`);
    expect(right, `read ${read.join(' ')} for 0 1 2 3 4 5 6 7 8 9`).toBeGreaterThanOrEqual(8);
  });
});
