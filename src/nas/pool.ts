/**
 * A pool of training worker threads (Node only): `cambrian search` runs the engine on P threads, one
 * task per thread at a time. A thread that dies (an engine crash, out of memory) fails only the task
 * it was running and is replaced.
 */
import { Worker } from 'node:worker_threads';
import type { Backend } from '../engine/types.ts';
import type { TaskResult } from '../protocol/result.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';

export interface Trained {
  result: TaskResult;
  /** Wall time of train() on its worker thread (≈ CPU-seconds with one thread per free core). */
  seconds: number;
}

type Reply = { id: number; result: TaskResult; seconds: number } | { id: number; error: string };

interface Slot {
  worker: Worker;
  /** The task this thread is running: settled by its reply or by the thread's death. */
  current?: { id: number; resolve: (t: Trained) => void; reject: (e: Error) => void };
}

export class TrainPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: (() => void)[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    readonly size: number,
    private readonly backend: Backend = 'cpu',
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`pool size must be ≥ 1, got ${size}`);
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(new URL('./worker-boot.mjs', import.meta.url)) };
    slot.worker.on('message', (reply: Reply) => {
      const current = slot.current;
      if (!current || current.id !== reply.id) return;
      slot.current = undefined;
      if ('error' in reply) current.reject(new Error(reply.error));
      else current.resolve({ result: reply.result, seconds: reply.seconds });
    });
    const died = (why: string) => {
      const current = slot.current;
      slot.current = undefined;
      current?.reject(new Error(`training thread died: ${why}`));
      if (!this.closed) {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots[i] = this.spawn();
        this.waiting.shift()?.();
      }
    };
    slot.worker.on('error', (err) => died(err.message));
    slot.worker.on('exit', (code) => {
      if (!this.closed) died(`exit code ${code}`);
    });
    return slot;
  }

  /** Trains one spec on the next free thread (queues while all are busy). */
  async train(spec: AnyTaskSpec): Promise<Trained> {
    if (this.closed) throw new Error('pool is closed');
    let slot = this.slots.find((s) => !s.current);
    while (!slot) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      slot = this.slots.find((s) => !s.current);
    }
    const id = this.nextId++;
    const claimed = slot;
    try {
      return await new Promise<Trained>((resolve, reject) => {
        claimed.current = { id, resolve, reject };
        claimed.worker.postMessage({ id, spec, backend: this.backend });
      });
    } finally {
      this.waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
