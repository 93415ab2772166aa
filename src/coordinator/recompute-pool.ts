/**
 * The CPU reference's recomputations — audits, the referee's intervals, a task's truth from step 0 —
 * off the event loop. Each is the integer trainer running for milliseconds (the benchmark's tiny
 * tasks) to seconds (MNIST); on the event loop every lease and submission waits meanwhile, which
 * held the audited coordinator to about a quarter of its unaudited rate (docs/TRUST.md).
 *
 * A thread runs one job at a time and jobs queue while every thread is busy. The threads run the
 * same functions as the event loop would (./audit.ts, ./referee.ts), so the answers are the same
 * bits. A thread that cannot start or dies hands its job back to the event loop: slower, same
 * answer, nothing lost.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { recomputeSpan } from './audit.ts';
import { recomputeTask, referee } from './referee.ts';

/** The jobs a recompute thread runs, by name: the thread body and the event-loop fallback share them. */
export const RECOMPUTE_JOBS = { span: recomputeSpan, referee, truth: recomputeTask };

type Jobs = typeof RECOMPUTE_JOBS;
type JobName = keyof Jobs;
export type Recompute = { [K in JobName]: Jobs[K] };

/** What a thread answers for job `id`. */
export type RecomputeReply = { id: number; value: unknown } | { id: number; error: string };

interface Job {
  id: number;
  name: JobName;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** Runs a job on the event loop (no thread, or its thread died). */
function runHere(job: Job): void {
  const fn = RECOMPUTE_JOBS[job.name] as (...args: unknown[]) => Promise<unknown>;
  fn(...job.args).then(job.resolve, job.reject);
}

class RecomputeThread {
  readonly worker: Worker;
  job?: Job;
  alive = true;

  constructor(onFree: () => void, onDead: (t: RecomputeThread, err?: Error) => void) {
    this.worker = new Worker(new URL('./recompute-thread.mjs', import.meta.url));
    this.worker.unref(); // an idle pool does not keep the process alive
    this.worker.on('message', (reply: RecomputeReply) => {
      const job = this.job;
      if (!job || job.id !== reply.id) return;
      this.job = undefined;
      if ('error' in reply) job.reject(new Error(reply.error));
      else job.resolve(reply.value);
      onFree();
    });
    const die = (err?: Error) => {
      if (!this.alive) return;
      this.alive = false;
      void this.worker.terminate(); // an 'error' may leave it running
      const job = this.job;
      this.job = undefined;
      if (job) runHere(job);
      onDead(this, err);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(code === 0 ? undefined : new Error(`exit code ${code}`)));
  }

  start(job: Job): void {
    this.job = job;
    this.worker.postMessage({ id: job.id, name: job.name, args: job.args });
  }
}

export class RecomputePool implements Recompute {
  private threads: RecomputeThread[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;

  /**
   * `threads` 0 recomputes on the event loop (to compare, or where threads cannot run). The default
   * leaves a core to the event loop and the signature-recovery threads.
   */
  constructor(
    threads = Math.min(2, Math.max(1, availableParallelism() - 1)),
    private readonly log: (msg: string) => void = () => {},
  ) {
    for (let i = 0; i < threads; i++) {
      try {
        this.threads.push(
          new RecomputeThread(
            () => this.dispatch(),
            (t, err) => this.drop(t, err),
          ),
        );
      } catch (err) {
        this.log(`recompute: no thread, recomputing on the event loop: ${err}`);
      }
    }
  }

  /** Threads alive now (0: every job runs on the event loop). */
  get size(): number {
    return this.threads.length;
  }

  readonly span: Recompute['span'] = (...args) => this.run('span', args) as ReturnType<Recompute['span']>;
  readonly referee: Recompute['referee'] = (...args) =>
    this.run('referee', args) as ReturnType<Recompute['referee']>;
  readonly truth: Recompute['truth'] = (...args) => this.run('truth', args) as ReturnType<Recompute['truth']>;

  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    for (const t of threads) t.alive = false; // terminating is not dying: no job to hand back
    await Promise.all(threads.map((t) => t.worker.terminate()));
    // Jobs still queued or running when the pool closes finish on the event loop.
    for (const t of threads) if (t.job) runHere(t.job);
    for (const job of this.queue.splice(0)) runHere(job);
  }

  private run(name: JobName, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const job = { id: this.nextId++, name, args, resolve, reject };
      if (this.threads.length === 0) return runHere(job);
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const thread of this.threads) {
      if (this.queue.length === 0) return;
      if (!thread.job) thread.start(this.queue.shift()!);
    }
  }

  private drop(thread: RecomputeThread, err?: Error): void {
    this.threads = this.threads.filter((t) => t !== thread);
    if (err) this.log(`recompute: a thread stopped (${err.message}); ${this.threads.length} left`);
    if (this.threads.length === 0) for (const job of this.queue.splice(0)) runHere(job);
    else this.dispatch();
  }
}
