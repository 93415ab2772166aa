/**
 * A training worker thread for the offline search (Node only): receives `{ id, spec, backend }`,
 * trains with the engine, answers `{ id, result, seconds }` or `{ id, error }`. `seconds` is the
 * wall time of `train()` on this thread, which with one worker per core is its CPU time.
 */
import { parentPort } from 'node:worker_threads';
import { loadDataset } from '../data/node.ts';
import type { Backend } from '../engine/types.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';
import { trainAny } from './train-any.ts';

export interface TrainRequest {
  id: number;
  spec: AnyTaskSpec;
  backend: Backend;
}

if (!parentPort) throw new Error('train-worker must run in a worker thread');
const port = parentPort;

port.on('message', async ({ id, spec, backend }: TrainRequest) => {
  try {
    const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
    const started = performance.now();
    const result = await trainAny(spec, dataset, { backend });
    port.postMessage({ id, result, seconds: (performance.now() - started) / 1000 });
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
