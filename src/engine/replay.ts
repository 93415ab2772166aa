/**
 * Replaying a span of a task for verification (docs/TRUST.md): from the state at `fromStep` (the
 * initial weights when absent), run the steps up to `toStep` and report the state hash there; with
 * `validate`, also the validation of that state and its parameters' hash. The auditor (a headless
 * worker or a tab's engine Worker) and the coordinator's CPU fallback run this same function, so
 * an honest auditor's answer is bit-identical to the voters' trace.
 */
import type { AuditAnswer } from '../protocol/http.ts';
import type { AnyTaskSpec } from '../protocol/index.ts';
import { CpuTrainer, hashI32, runSteps, stateHashOf } from './train-cpu.ts';
import type { Dataset, TrainOptions, TrainState } from './types.ts';

export interface ReplaySpan {
  fromStep: number;
  toStep: number;
  validate: boolean;
}

export async function replaySpan(
  spec: AnyTaskSpec,
  dataset: Dataset,
  span: ReplaySpan,
  start: TrainState | undefined,
  options: Pick<TrainOptions, 'signal' | 'onProgress' | 'progressEvery'> = {},
): Promise<AuditAnswer> {
  if ((start?.step ?? 0) !== span.fromStep)
    throw new Error(`the start state is at step ${start?.step ?? 0}, the span starts at ${span.fromStep}`);
  const trainer = new CpuTrainer(spec, dataset, start);
  await runSteps(trainer, span.toStep, options);
  const stateHash = stateHashOf(trainer);
  if (!span.validate) return { stateHash };
  const v = trainer.validate();
  return {
    stateHash,
    weightsHash: hashI32(trainer.params),
    valCorrect: v.valCorrect,
    valCount: v.valCount,
    valLoss: v.valLoss.toString(),
  };
}
