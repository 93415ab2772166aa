/**
 * The recompute threads give the event loop's answers (span replay, referee, truth), and a thread that
 * dies mid-job hands the job back to the event loop instead of losing it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/node.ts';
import { trainCpuRun } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import { recomputeSpan } from './audit.ts';
import { RecomputePool } from './recompute-pool.ts';
import { recomputeTask, referee } from './referee.ts';
import { divergentResult, tinySpec } from './testing.ts';

async function honestRun(seed: number) {
  const spec = tinySpec(seed, { steps: 12 });
  const states: TrainState[] = [];
  const { result } = await trainCpuRun(spec, await loadDataset('blobs'), {
    onCheckpoint: (s) => states.push(s),
  });
  return { spec, result, states };
}

describe('RecomputePool', () => {
  let pool: RecomputePool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('answers as the event loop does: span replays (validating or not), the referee, the truth', async () => {
    const { spec, result, states } = await honestRun(71);
    const liar = divergentResult(result, 1);
    pool = new RecomputePool(2);
    expect(pool.size).toBe(2);
    const last = states.length - 1;
    const span = { fromStep: states[0].step, toStep: states[last].step, validate: true };
    // Jobs in flight together: more than there are threads, so some queue.
    const [pass, fail, verdict, truth] = await Promise.all([
      pool.span(spec, span, states[0]),
      pool.span(spec, { ...span, validate: false }, states[0]),
      pool.referee(spec, [result, liar]),
      pool.truth(spec),
    ]);
    expect(pass).toEqual(await recomputeSpan(spec, span, states[0]));
    expect(pass.stateHash).toBe(result.checkpoints[last].stateHash);
    expect(pass.weightsHash).toBe(result.weightsHash);
    expect(fail).toEqual({ stateHash: result.checkpoints[last].stateHash });
    const here = await referee(spec, [result, liar]);
    expect({ ...verdict, ms: 0 }).toEqual({ ...here, ms: 0 });
    expect(verdict.right).toBe(result.digest);
    expect(truth).toEqual(await recomputeTask(spec));
    expect(truth.digest).toBe(result.digest);
  });

  it('reports a job that throws as a rejection, and keeps its thread', async () => {
    pool = new RecomputePool(1);
    const broken = { ...tinySpec(72), dataset: { name: 'no-such-dataset', sha256: '00' } };
    await expect(pool.truth(broken as never)).rejects.toThrow(/no-such-dataset|unknown dataset/i);
    expect(pool.size).toBe(1);
    const spec = tinySpec(73);
    expect(await pool.truth(spec)).toEqual(await recomputeTask(spec));
  });

  it('hands the job of a thread that dies back to the event loop', async () => {
    const { spec } = await honestRun(74);
    const stopped: string[] = [];
    pool = new RecomputePool(1, (msg) => stopped.push(msg));
    const answer = pool.truth(spec);
    // Kill the only thread while it holds the job (it was handed over at once: the pool was idle).
    const thread = (pool as unknown as { threads: { worker: { terminate(): Promise<number> } }[] })
      .threads[0];
    await new Promise<void>((resolve) => {
      (thread.worker as unknown as NodeJS.EventEmitter).once('online', () => resolve());
    });
    await thread.worker.terminate();
    expect(await answer).toEqual(await recomputeTask(spec));
    expect(pool.size).toBe(0);
  });
});
