/**
 * The states (params + momentum) a worker took at the trace checkpoints of its recently submitted
 * tasks, kept in memory so it can answer the audit's and the referee's state requests (DESIGN §2: they
 * recompute one checkpoint interval, from the agreed state a voter uploads). Shared by the headless
 * worker (Node) and the browser tab's engine Worker (src/worker/engine.worker.ts). Browser-safe.
 *
 * Bounded two ways: at most `maxTasks` tasks, and at most `maxBytes` in all (8 bytes per parameter
 * per checkpoint); the oldest task goes first. A task larger than `maxBytes` on its own is not kept.
 * The default, 4 tasks within 256 MiB, holds e.g. 4 tasks of 100k parameters with 40 checkpoints
 * each (128 MB). Nothing is written to disk: after a restart the referee falls back to step 0.
 */
import type { Hex } from 'viem';
import { stateUploadOf } from '../coordinator/client.ts';
import type { TrainState } from '../engine/types.ts';
import type { StateUpload } from '../protocol/http.ts';

const bytesOf = (s: TrainState) => s.params.byteLength + s.momentum.byteLength;

/**
 * Runs a training with an `onCheckpoint` that collects its states, then keeps them under `taskId`:
 * how the headless worker and the tab's engine Worker both fill their memory.
 */
export async function keepingStates<T>(
  memory: StateMemory,
  taskId: Hex,
  run: (onCheckpoint: (state: TrainState) => void) => Promise<T>,
): Promise<T> {
  const states: TrainState[] = [];
  const out = await run((state) => states.push(state));
  memory.keep(taskId, states);
  return out;
}

export class StateMemory {
  private readonly tasks = new Map<Hex, Map<number, TrainState>>();
  private bytes = 0;

  constructor(
    readonly maxTasks = 4,
    readonly maxBytes = 256 * 1024 * 1024,
  ) {}

  /** Remembers a task's checkpoint states (replacing any kept for that task), evicting the oldest. */
  keep(taskId: Hex, states: readonly TrainState[]): void {
    this.forget(taskId);
    const size = states.reduce((n, s) => n + bytesOf(s), 0);
    if (size > this.maxBytes || this.maxTasks < 1) return;
    while (this.tasks.size >= this.maxTasks || this.bytes + size > this.maxBytes) {
      this.forget(this.tasks.keys().next().value as Hex);
    }
    this.tasks.set(taskId, new Map(states.map((s) => [s.step, s])));
    this.bytes += size;
  }

  get(taskId: Hex, step: number): TrainState | undefined {
    return this.tasks.get(taskId)?.get(step);
  }

  /** The `POST /states` body for a kept state (src/protocol/http.ts StateUploadSchema), or undefined. */
  upload(taskId: Hex, step: number): StateUpload | undefined {
    const state = this.get(taskId, step);
    if (!state) return undefined;
    return stateUploadOf(taskId, state);
  }

  get size(): { tasks: number; bytes: number } {
    return { tasks: this.tasks.size, bytes: this.bytes };
  }

  private forget(taskId: Hex): void {
    const states = this.tasks.get(taskId);
    if (!states) return;
    for (const s of states.values()) this.bytes -= bytesOf(s);
    this.tasks.delete(taskId);
  }
}
