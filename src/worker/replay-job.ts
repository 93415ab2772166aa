/**
 * An audit job, replayed (src/engine/replay.ts) on the CPU reference: spans are short, and every
 * backend gives these bits. For report 'state' the work carries the `POST /states` body of the state
 * reached, which the worker sends before its answer (a dispute's referee recomputes one step from it).
 * The headless worker and the tab's engine Worker both answer jobs with this.
 */
import { auditStartState, stateUploadOf } from '../coordinator/client.ts';
import { replay } from '../engine/replay.ts';
import type { Dataset, TrainOptions } from '../engine/types.ts';
import type { AuditJob, AuditWork } from '../protocol/http.ts';

export async function replayAuditJob(
  job: AuditJob,
  dataset: Dataset,
  options: Pick<TrainOptions, 'signal'> = {},
): Promise<AuditWork> {
  const { answer, state } = await replay(job.spec, dataset, job, auditStartState(job), options);
  return job.report === 'state' ? { answer, upload: stateUploadOf(job.taskId, state) } : { answer };
}
