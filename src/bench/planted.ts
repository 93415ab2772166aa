/**
 * The planted-step liar (an attack, for the tests and `cambrian bench adversary`): it computes
 * honestly except that right after step `at` it puts other weights in (one parameter nudged by one
 * unit) and goes on from them. Everything it reports, votes and per-step hashes alike, is what its
 * own run really gives, so its lists are consistent: only a recomputation of step `at` shows it.
 * Used as a voter (`plantedResult`) or as an auditor and a dispute's side (`plantedReplay`).
 */
import type { Hex } from 'viem';
import { auditStartState, stateUploadOf } from '../coordinator/client.ts';
import { answerAt } from '../engine/replay.ts';
import { CpuTrainer, resultOf, stateHashOf } from '../engine/train-cpu.ts';
import type { Dataset } from '../engine/types.ts';
import type { AuditJob, AuditWork } from '../protocol/http.ts';
import { type AnyTaskSpec, checkpointSteps, type TaskResult } from '../protocol/index.ts';

/** Runs the trainer to `toStep`, nudging after step `at`; calls `after` once per step. */
function runPlanted(trainer: CpuTrainer, toStep: number, at: number, after: (t: CpuTrainer) => void) {
  while (trainer.step < toStep) {
    trainer.runStep();
    if (trainer.step === at) trainer.params[0] += 1;
    after(trainer);
  }
}

/** The whole task's result with the state nudged after step `at`. */
export function plantedResult(spec: AnyTaskSpec, dataset: Dataset, at: number): TaskResult {
  const trainer = new CpuTrainer(spec, dataset);
  const trace = new Set(checkpointSteps(spec.training.steps, spec.checkpointEvery));
  const checkpoints: { step: number; stateHash: Hex }[] = [];
  runPlanted(trainer, spec.training.steps, at, (t) => {
    if (trace.has(t.step)) checkpoints.push({ step: t.step, stateHash: stateHashOf(t) });
  });
  return resultOf(trainer, checkpoints);
}

/** An audit job answered from the planted run (honest wherever the job's span misses step `at`). */
export function plantedReplay(job: AuditJob, dataset: Dataset, at: number): AuditWork {
  const trainer = new CpuTrainer(job.spec, dataset, auditStartState(job));
  const stepHashes: Hex[] = [];
  runPlanted(trainer, job.toStep, at, (t) => {
    if (job.report === 'steps') stepHashes.push(stateHashOf(t));
  });
  const answer = answerAt(trainer, job.validate, job.report === 'steps' ? stepHashes : undefined);
  if (job.report !== 'state') return { answer };
  return { answer, upload: stateUploadOf(job.taskId, trainer.state()) };
}
