/**
 * Replaying a span of a task for verification (docs/TRUST.md): from the state at `fromStep` (the
 * initial weights when absent), run the steps up to `toStep` and report the state hash there; with
 * `validate`, also the validation of that state and its parameters' hash; with report 'steps', the
 * state hash after every step (a dispute's bisection). The auditor (a headless worker or a tab's
 * engine Worker), each side of a dispute and the coordinator's CPU referee run this same function,
 * so an honest answer is bit-identical to an honest voter's trace.
 */
import type { Hex } from 'viem';
import type { AuditAnswer, AuditReport } from '../protocol/http.ts';
import type { AnyTaskSpec } from '../protocol/index.ts';
import { CpuTrainer, hashI32, runSteps, stateHashOf } from './train-cpu.ts';
import type { Dataset, TrainOptions, TrainState } from './types.ts';

export interface ReplaySpan {
  fromStep: number;
  toStep: number;
  validate: boolean;
  report?: AuditReport;
}

type ReplayOptions = Pick<TrainOptions, 'signal' | 'onProgress' | 'progressEvery'>;

/** Replays `span` and returns the answer with the state reached at toStep. */
export async function replay(
  spec: AnyTaskSpec,
  dataset: Dataset,
  span: ReplaySpan,
  start: TrainState | undefined,
  options: ReplayOptions = {},
): Promise<{ answer: AuditAnswer; state: TrainState }> {
  if ((start?.step ?? 0) !== span.fromStep)
    throw new Error(`the start state is at step ${start?.step ?? 0}, the span starts at ${span.fromStep}`);
  const trainer = new CpuTrainer(spec, dataset, start);
  let stepHashes: Hex[] | undefined;
  if (span.report === 'steps') {
    stepHashes = [];
    while (trainer.step < span.toStep) {
      await runSteps(trainer, trainer.step + 1, options);
      stepHashes.push(stateHashOf(trainer));
    }
  } else {
    await runSteps(trainer, span.toStep, options);
  }
  return { answer: answerAt(trainer, span.validate, stepHashes), state: trainer.state() };
}

/** The answer for the trainer's current state: its hash, the step hashes given, and the validation. */
export function answerAt(trainer: CpuTrainer, validate: boolean, stepHashes?: Hex[]): AuditAnswer {
  const answer: AuditAnswer = { stateHash: stateHashOf(trainer), ...(stepHashes && { stepHashes }) };
  if (!validate) return answer;
  const v = trainer.validate();
  return {
    ...answer,
    weightsHash: hashI32(trainer.params),
    valCorrect: v.valCorrect,
    valCount: v.valCount,
    valLoss: v.valLoss.toString(),
  };
}

/** Replays `span` and returns the answer only. */
export async function replaySpan(
  spec: AnyTaskSpec,
  dataset: Dataset,
  span: ReplaySpan,
  start: TrainState | undefined,
  options: ReplayOptions = {},
): Promise<AuditAnswer> {
  return (await replay(spec, dataset, span, start, options)).answer;
}
