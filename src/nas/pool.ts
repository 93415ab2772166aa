/**
 * A pool of training worker threads (Node only): `cambrian search` and the search benchmark run the
 * engine on P threads, one task per thread at a time.
 */
import { Worker } from 'node:worker_threads';
import type { Backend } from '../engine/types.ts';
import type { TaskResult } from '../protocol/result.ts';
import type { TaskSpec } from '../protocol/spec.ts';

export interface Trained {
  result: TaskResult;
  /** Wall time of train() on its worker thread (≈ CPU-seconds with one thread per core). */
  seconds: number;
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

type Reply = { id: number; result: TaskResult; seconds: number } | { id: number; error: string };

export class TrainPool {
  private readonly slots: Slot[];
  private readonly waiting: (() => void)[] = [];
  private readonly replies = new Map<number, { resolve: (t: Trained) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(
    readonly size: number,
    private readonly backend: Backend = 'cpu',
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`pool size must be ≥ 1, got ${size}`);
    this.slots = Array.from({ length: size }, () => this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url));
    worker.on('message', (reply: Reply) => {
      const pending = this.replies.get(reply.id);
      this.replies.delete(reply.id);
      if (!pending) return;
      if ('error' in reply) pending.reject(new Error(reply.error));
      else pending.resolve({ result: reply.result, seconds: reply.seconds });
    });
    worker.on('error', (err) => {
      for (const [, p] of this.replies) p.reject(err);
      this.replies.clear();
    });
    return { worker, busy: false };
  }

  /** Trains one spec on the next free thread (queues while all are busy). */
  async train(spec: TaskSpec): Promise<Trained> {
    let slot = this.slots.find((s) => !s.busy);
    while (!slot) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      slot = this.slots.find((s) => !s.busy);
    }
    slot.busy = true;
    const id = this.nextId++;
    try {
      return await new Promise<Trained>((resolve, reject) => {
        this.replies.set(id, { resolve, reject });
        slot.worker.postMessage({ id, spec, backend: this.backend });
      });
    } finally {
      slot.busy = false;
      this.waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
