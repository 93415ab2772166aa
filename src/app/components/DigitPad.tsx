/**
 * "Try it": draw on a canvas; the drawing gets MNIST's preprocessing (lib/digit-preprocess.ts: crop,
 * fit into 20/28 of the grid keeping the aspect ratio with area anti-aliasing, centre of mass in the
 * middle) on the model's input grid (28×28 for MNIST, √inputs squared in general), and onnxruntime-web,
 * in the engine Worker, classifies it.
 */
import { useEffect, useRef, useState } from 'react';
import { engineWorker } from '../../worker/engine-client.ts';
import { greyFromRgba, PEN_RADIUS, preprocessDigit, PAD_SIZE as SIZE } from '../lib/digit-preprocess.ts';

export function DigitPad({
  model,
  inputs,
  classes,
}: {
  /** The model's ONNX; may take a while the first time (the leaderboard re-trains it). */
  model: () => Promise<Uint8Array>;
  inputs: number;
  classes: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  /** The last pen position while the pen is down. */
  const last = useRef<{ x: number; y: number } | undefined>(undefined);
  const [scores, setScores] = useState<number[]>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
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

  /** A round-capped line from the last pen position, so fast strokes stay continuous. */
  function stroke(e: React.PointerEvent<HTMLCanvasElement>) {
    const from = last.current;
    if (!from) return;
    const ctx = e.currentTarget.getContext('2d');
    if (!ctx) return;
    const to = point(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2 * PEN_RADIUS;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    last.current = to;
  }

  async function classify() {
    const c = canvas.current;
    if (!c) return;
    setError(undefined);
    try {
      const pixels = downsample(c, side);
      setBusy(true);
      const onnx = await model();
      const logits = await engineWorker().classify(onnx.slice(), pixels);
      setScores(softmax(logits));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
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
        aria-describedby="try-hint"
        data-testid="digit-canvas"
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          last.current = point(e);
          stroke(e);
        }}
        onPointerMove={stroke}
        onPointerUp={() => {
          last.current = undefined;
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
        {busy && !scores && (
          <p className="muted small" role="status">
            Reading your drawing…
          </p>
        )}
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

/** The pad's drawing as the model's input: MNIST's preprocessing on a side×side grid. */
function downsample(source: HTMLCanvasElement, side: number): Float32Array {
  const ctx = source.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D context');
  const { data } = ctx.getImageData(0, 0, SIZE, SIZE);
  return preprocessDigit(greyFromRgba(data, SIZE, SIZE), side);
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
