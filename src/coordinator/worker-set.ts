/**
 * The workers that may have something waiting for them in the database (an audit job drawn, a
 * state ask owed), as last read. Every lease call asks about its worker and most have nothing, so
 * the answer comes from memory: the set is re-read at most every `refreshMs`, what this process
 * writes is added at once, and what another process sharing the database writes is seen within
 * `refreshMs`. A worker in the set may still have nothing (the caller then queries and finds none).
 */
export class WorkerSet {
  private workers = new Set<string>();
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly read: () => Promise<string[]>,
    readonly refreshMs: number,
  ) {}

  async mayHave(worker: string): Promise<boolean> {
    if (Date.now() - this.readAt > this.refreshMs) {
      this.workers = new Set(await this.read());
      this.readAt = Date.now();
    }
    return this.workers.has(worker);
  }

  add(worker: string): void {
    this.workers.add(worker);
  }

  /** The caller found nothing for `worker`: no query for it until the next read says otherwise. */
  delete(worker: string): void {
    this.workers.delete(worker);
  }
}
