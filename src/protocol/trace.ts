/**
 * The training trace: a Merkle tree over checkpoint leaves (DESIGN §2).
 *
 * leaf = keccak256(abi.encode(uint32 step, bytes32 stateHash)); a parent is keccak256(left ‖ right)
 * in step order (not sorted); an odd node at the end of a level is carried up unchanged; the root of
 * one leaf is the leaf itself. Order-preserving, so bisection can find the first diverging step.
 */
import { bytesToHex, type Hex } from 'viem';
import { abiWords } from './abi.ts';
import { keccakBytes } from './keccak.ts';
import type { Checkpoint } from './result.ts';

function leafBytes(step: number, stateHash: Hex): Uint8Array {
  return keccakBytes(abiWords({ uint: step, bits: 32 }, { bytes32: stateHash }));
}

export function traceLeaf(step: number, stateHash: Hex): Hex {
  return bytesToHex(leafBytes(step, stateHash));
}

export function traceRoot(checkpoints: readonly Checkpoint[]): Hex {
  if (checkpoints.length === 0) throw new Error('a trace needs at least one checkpoint');
  let level = checkpoints.map((c) => leafBytes(c.step, c.stateHash as Hex));
  const pair = new Uint8Array(64);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      if (i + 1 === level.length) next.push(level[i]);
      else {
        pair.set(level[i], 0);
        pair.set(level[i + 1], 32);
        next.push(keccakBytes(pair));
      }
    }
    level = next;
  }
  return bytesToHex(level[0]);
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
