/**
 * "Try it": draw on a canvas; the drawing is centred and downsampled to the model's input grid
 * (28×28 for MNIST, √inputs squared in general) and onnxruntime-web, in the engine Worker, classifies it.
 */
import { useEffect, useRef, useState } from 'react';
import { engineWorker } from '../../worker/engine-client.ts';

const SIZE = 224;

export function DigitPad({ onnx, inputs, classes }: { onnx: Uint8Array; inputs: number; classes: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const [scores, setScores] = useState<number[]>();
  const [error, setError] = useState<string>();
  const side = Math.round(Math.sqrt(inputs));
  const square = side * side === inputs;

  useEffect(() => paintBlack(canvas.current), []);

  function clear() {
    paintBlack(canvas.current);
    setScores(undefined);
  }

  function point(e: React.PointerEvent<HTMLCanvasElement>) {
    const rect = e.currentTarget.getBoundingClientRect();
    return {
      x: ((e.clientX - rect.left) / rect.width) * SIZE,
      y: ((e.clientY - rect.top) / rect.height) * SIZE,
    };
  }

  function stroke(e: React.PointerEvent<HTMLCanvasElement>) {
    if (!drawing.current) return;
    const ctx = e.currentTarget.getContext('2d');
    if (!ctx) return;
    const { x, y } = point(e);
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x, y, SIZE / 18, 0, Math.PI * 2);
    ctx.fill();
  }

  async function classify() {
    const c = canvas.current;
    if (!c) return;
    setError(undefined);
    try {
      const pixels = downsample(c, side);
      const logits = await engineWorker().classify(onnx.slice(), pixels);
      setScores(softmax(logits));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }

  if (!square)
    return (
      <p className="muted">
        This model's input ({inputs} features) is not an image, so there is nothing to draw.
      </p>
    );
  const best = scores ? scores.indexOf(Math.max(...scores)) : undefined;
  return (
    <div className="digitpad">
      <canvas
        ref={canvas}
        width={SIZE}
        height={SIZE}
        className="pad"
        aria-label="Drawing area: draw a digit with the mouse, a finger or a pen"
        data-testid="digit-canvas"
        onPointerDown={(e) => {
          drawing.current = true;
          e.currentTarget.setPointerCapture(e.pointerId);
          stroke(e);
        }}
        onPointerMove={stroke}
        onPointerUp={() => {
          drawing.current = false;
          void classify();
        }}
      />
      <div className="pad-side">
        <div className="row">
          <button type="button" onClick={() => void classify()} data-testid="classify">
            Classify
          </button>
          <button type="button" className="secondary" onClick={clear}>
            Clear
          </button>
        </div>
        {error && (
          <p className="warn" role="alert">
            {error}
          </p>
        )}
        {scores && (
          <div data-testid="prediction" data-class={best}>
            <p className="prediction" aria-live="polite">
              Prediction: <strong>{best}</strong>
            </p>
            <ol className="bars" aria-label="Class probabilities" start={0}>
              {scores.slice(0, classes).map((p, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: classes are positional
                <li key={i} className={i === best ? 'best' : ''}>
                  <span className="bar-label">{i}</span>
                  <span className="bar" style={{ width: `${Math.max(1, p * 100)}%` }} />
                  <span className="bar-value">{(p * 100).toFixed(1)}%</span>
                </li>
              ))}
            </ol>
          </div>
        )}
      </div>
    </div>
  );
}

function paintBlack(c: HTMLCanvasElement | null) {
  const ctx = c?.getContext('2d');
  if (!ctx) return;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, SIZE, SIZE);
}

/**
 * MNIST-style preprocessing: crop to the ink's bounding box, scale it into the central 20/28 of the
 * grid keeping its aspect, and read intensities in [0, 1].
 */
function downsample(source: HTMLCanvasElement, side: number): Float32Array {
  const ctx = source.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D context');
  const { data } = ctx.getImageData(0, 0, SIZE, SIZE);
  let [x0, y0, x1, y1] = [SIZE, SIZE, -1, -1];
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++)
      if (data[(y * SIZE + x) * 4] > 32) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
  const out = document.createElement('canvas');
  out.width = side;
  out.height = side;
  const octx = out.getContext('2d', { willReadFrequently: true });
  if (!octx) throw new Error('no 2D context');
  octx.fillStyle = '#000';
  octx.fillRect(0, 0, side, side);
  if (x1 >= 0) {
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const box = (side * 20) / 28;
    const scale = box / Math.max(w, h);
    octx.imageSmoothingQuality = 'high';
    octx.drawImage(
      source,
      x0,
      y0,
      w,
      h,
      (side - w * scale) / 2,
      (side - h * scale) / 2,
      w * scale,
      h * scale,
    );
  }
  const small = octx.getImageData(0, 0, side, side).data;
  const pixels = new Float32Array(side * side);
  for (let i = 0; i < pixels.length; i++) pixels[i] = small[i * 4] / 255;
  return pixels;
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
