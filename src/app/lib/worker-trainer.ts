/** The contribute loop's Trainer, backed by the engine Worker: the page thread only relays progress. */
import type { TaskResult } from '../../protocol/result.ts';
import { type AnyTaskSpec, taskIdOf } from '../../protocol/spec.ts';
import { engineWorker, progressProxy } from '../../worker/engine-client.ts';
import type { Backend, DatasetRef, StepProgress, Trainer } from './contributor.ts';

/** Progress reaches the loop at most this often (the display coalesces further, see contribute-store). */
const PROGRESS_EVERY_MS = 250;

export function workerTrainer(): Trainer {
  const worker = engineWorker();
  return {
    train(
      spec: AnyTaskSpec,
      dataset: DatasetRef,
      backend: Backend,
      onProgress: (p: StepProgress) => void,
    ): Promise<TaskResult> {
      let last = 0;
      const relay = progressProxy((p: StepProgress) => {
        const now = performance.now();
        if (now - last < PROGRESS_EVERY_MS && p.step < p.steps) return;
        last = now;
        onProgress({ step: p.step, steps: p.steps, loss: p.loss });
      });
      // Ask for ~200 progress points per task: enough for the loss curve, few enough messages.
      const progressEvery = Math.max(1, Math.floor(spec.training.steps / 200));
      // Keeps the checkpoint states under the task id, for the audit's state requests.
      return worker.train({ spec, dataset, backend, progressEvery, taskId: taskIdOf(spec) }, relay);
    },
    stateUpload: (taskId, step) => worker.stateUpload(taskId, step),
    replay: (job, dataset) => worker.replay(job, dataset),
    cancel: () => worker.cancel(),
    takeDeviceLosses: () => worker.takeDeviceLosses(),
  };
}
