/**
 * The plan compiler's entry: a spec (v1 MLP or v2 conv) becomes a Program (./program.ts): named
 * buffers and the op sequences of a training step (forward, backward and update in one list), of
 * the first step's prologue and of validation. Both backends run exactly these sequences
 * (./train-cpu.ts with the twins, ./webgpu/train.ts with the kernels). The rules per layer type are
 * in ./compile-mlp.ts (dense, and the shared helpers) and ./compile-conv.ts (conv, pools, flatten).
 */
import { type AnyTaskSpec, isV2 } from '../protocol/spec.ts';
import { compileConv } from './compile-conv.ts';
import { compileMlp } from './compile-mlp.ts';
import type { TrainingPlan } from './plan.ts';
import type { CompileOptions, Program } from './program.ts';
import type { Dataset } from './types.ts';

export type { CompileOptions, Program, StateRange } from './program.ts';

export function compileProgram(
  spec: AnyTaskSpec,
  dataset: Dataset,
  plan: TrainingPlan,
  options: CompileOptions = {},
): Program {
  const stepsPerUpload = Math.max(1, options.stepsPerUpload ?? 1);
  return isV2(spec)
    ? compileConv(spec, dataset, plan, stepsPerUpload)
    : compileMlp(spec, dataset, plan, { stepsPerUpload });
}
