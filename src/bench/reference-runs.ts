/**
 * The CPU reference's result and checkpoint states per task, computed once per task: the load
 * generators of `bench coordinator` and `bench adversary` play honest workers (who agree with the
 * reference bit for bit) and answer the audits' state requests from it.
 */
import type { Hex } from 'viem';
import { claimOf } from '../coordinator/verification.ts';
import { loadDataset } from '../data/node.ts';
import { trainCpuRun } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import type { AuditAnswer, AuditJob } from '../protocol/http.ts';
import { type AnyTaskSpec, type TaskResult, taskIdOf } from '../protocol/index.ts';

export interface ReferenceRun {
  result: TaskResult;
  states: TrainState[];
}

export class ReferenceRuns {
  private readonly runs = new Map<Hex, Promise<ReferenceRun>>();

  compute(spec: AnyTaskSpec): Promise<ReferenceRun> {
    const taskId = taskIdOf(spec);
    let run = this.runs.get(taskId);
    if (!run) {
      run = (async () => {
        const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
        const states: TrainState[] = [];
        const { result } = await trainCpuRun(spec, dataset, { onCheckpoint: (s) => states.push(s) });
        return { result, states };
      })();
      this.runs.set(taskId, run);
    }
    return run;
  }

  /** The state at `step` of a task already computed, or undefined. */
  /**
   * What an honest auditor answers for `job` (the true trace there: replaying gives it, so the
   * simulated workers read it instead), or, given `claimed`, what that result claims there.
   */
  async auditAnswer(job: AuditJob, claimed?: TaskResult): Promise<AuditAnswer | undefined> {
    const result = claimed ?? (await this.compute(job.spec)).result;
    return claimOf(job, result) as AuditAnswer | undefined;
  }

  async result(taskId: Hex): Promise<TaskResult | undefined> {
    return (await this.runs.get(taskId))?.result;
  }

  async state(taskId: Hex, step: number): Promise<TrainState | undefined> {
    return (await this.runs.get(taskId))?.states.find((s) => s.step === step);
  }
}
