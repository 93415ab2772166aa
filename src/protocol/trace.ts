/**
 * The training trace: a Merkle tree over checkpoint leaves (DESIGN §2).
 *
 * leaf = keccak256(abi.encode(uint32 step, bytes32 stateHash)); a parent is keccak256(left ‖ right)
 * in step order (not sorted); an odd node at the end of a level is carried up unchanged; the root of
 * one leaf is the leaf itself. Order-preserving, so bisection can find the first diverging step.
 */
import { concatHex, encodeAbiParameters, type Hex, keccak256 } from 'viem';
import type { Checkpoint } from './result.ts';

export function traceLeaf(step: number, stateHash: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: 'uint32' }, { type: 'bytes32' }], [step, stateHash]));
}

export function traceRoot(checkpoints: readonly Checkpoint[]): Hex {
  if (checkpoints.length === 0) throw new Error('a trace needs at least one checkpoint');
  let level = checkpoints.map((c) => traceLeaf(c.step, c.stateHash as Hex));
  while (level.length > 1) {
    const next: Hex[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? keccak256(concatHex([level[i], level[i + 1]])) : level[i]);
    }
    level = next;
  }
  return level[0];
}

/** The steps at which checkpoints are taken: every `every` steps and the last step. */
export function checkpointSteps(steps: number, every: number): number[] {
  const out: number[] = [];
  for (let s = every; s < steps; s += every) out.push(s);
  out.push(steps);
  return out;
}

/** Index of the first checkpoint where two traces differ, or -1 if they agree on every common one. */
export function firstDivergence(a: readonly Checkpoint[], b: readonly Checkpoint[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i].step !== b[i].step || a[i].stateHash !== b[i].stateHash) return i;
  }
  return a.length === b.length ? -1 : n;
}
