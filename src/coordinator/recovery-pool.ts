/**
 * ecrecover off the event loop. Recovering a secp256k1 signer (~0.3 ms in WebAssembly) is the
 * largest piece of work per accepted result that does not need the coordinator's state, so it
 * runs in worker threads while the event loop parses requests and writes the queue. Requests that
 * arrive in one turn of the event loop travel to a thread in one message.
 *
 * If a thread cannot start (or dies), recovery falls back to the event loop: slower, same answers.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Address, Hex } from 'viem';
import { recoverSigner } from './signatures.ts';

interface Pending {
  items: [Hex, Hex][];
  resolve: (signers: (Address | null)[]) => void;
}

class RecoveryThread {
  readonly worker: Worker;
  readonly inFlight = new Map<number, Pending>();
  alive = true;

  constructor(onDead: (t: RecoveryThread) => void) {
    this.worker = new Worker(new URL('./recover-thread.mjs', import.meta.url));
    this.worker.unref();
    this.worker.on('message', ({ id, signers }: { id: number; signers: (Address | null)[] }) => {
      const p = this.inFlight.get(id);
      this.inFlight.delete(id);
      p?.resolve(signers);
    });
    const die = (err: unknown) => {
      if (!this.alive) return;
      this.alive = false;
      onDead(this);
      void this.worker.terminate(); // an 'error' may leave it running
      // Whatever it held is answered on the event loop instead: nothing is lost.
      for (const p of this.inFlight.values()) p.resolve(p.items.map(([h, s]) => recoverSigner(h, s) ?? null));
      this.inFlight.clear();
      if (err) console.error('coordinator: recovery thread stopped:', err);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(code === 0 ? undefined : new Error(`exit code ${code}`)));
  }
}

export class RecoveryPool {
  private threads: RecoveryThread[] = [];
  private queue: { hash: Hex; sig: Hex; resolve: (a: Address | undefined) => void }[] = [];
  private scheduled = false;
  private nextId = 0;

  /** `threads` 0 recovers on the event loop (one-core machines, or to compare). */
  constructor(threads = Math.min(4, Math.max(1, availableParallelism() - 1))) {
    for (let i = 0; i < threads; i++) {
      try {
        this.threads.push(new RecoveryThread((t) => this.drop(t)));
      } catch (err) {
        console.error('coordinator: no recovery thread, recovering on the event loop:', err);
      }
    }
  }

  /** The address that signed `hash` (ecrecover rules, shape already checked), or undefined. */
  recover(hash: Hex, sig: Hex): Promise<Address | undefined> {
    if (this.threads.length === 0) return Promise.resolve(recoverSigner(hash, sig));
    return new Promise((resolve) => {
      this.queue.push({ hash, sig, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    for (const t of threads) t.alive = false; // a terminated thread is not a failure
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private drop(thread: RecoveryThread): void {
    this.threads = this.threads.filter((t) => t !== thread);
  }

  /** Splits this turn's requests evenly over the threads, one message each. */
  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const threads = this.threads;
    if (threads.length === 0) {
      for (const q of batch) q.resolve(recoverSigner(q.hash, q.sig));
      return;
    }
    const per = Math.ceil(batch.length / threads.length);
    threads.forEach((thread, t) => {
      const part = batch.slice(t * per, (t + 1) * per);
      if (part.length === 0) return;
      const id = this.nextId++;
      const items = part.map((q): [Hex, Hex] => [q.hash, q.sig]);
      thread.inFlight.set(id, {
        items,
        resolve: (signers) => {
          for (const [i, q] of part.entries()) q.resolve(signers[i] ?? undefined);
        },
      });
      thread.worker.postMessage({ id, items });
    });
  }
}
