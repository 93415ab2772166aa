/**
 * Group commit: requests are written in batches, one transaction per batch, so the database
 * sees a few statements per batch rather than per request (each statement costs PGlite ~0.3 ms
 * whatever its size).
 *
 * A batch starts at most every `windowMs` (and never while the previous one is in flight): under
 * light load the requests of a few milliseconds share a transaction instead of each paying for
 * its own, which keeps the coordinator far from saturation for the price of ≤ windowMs latency.
 * The batch's `write` answers each request with a value or a Refusal (that request alone fails);
 * an exception fails the whole batch.
 */
import { Refusal } from './errors.ts';

interface Waiting<Req, Res> {
  request: Req;
  resolve: (value: Res) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<Req, Res> {
  private queue: Waiting<Req, Res>[] = [];
  private running = false;
  private lastStart = -Infinity;

  constructor(
    private readonly write: (batch: Req[]) => Promise<(Res | Refusal)[]>,
    private readonly windowMs: number,
    private readonly maxBatch = 256,
  ) {}

  push(request: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.running) {
        this.running = true;
        this.schedule();
      }
    });
  }

  private schedule(): void {
    const wait = this.lastStart + this.windowMs - performance.now();
    if (wait > 0) setTimeout(() => void this.drain(), wait);
    else setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    const batch = this.queue.splice(0, this.maxBatch);
    this.lastStart = performance.now();
    try {
      const outcomes = await this.write(batch.map((w) => w.request));
      batch.forEach((w, i) => {
        const o = outcomes[i];
        if (o instanceof Refusal) w.reject(o);
        else w.resolve(o as Res);
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
    if (this.queue.length > 0) this.schedule();
    else this.running = false;
  }
}
