/**
 * Runs the search continuously through the strategy interface (src/nas/strategy.ts): keeps the queue
 * filled with proposals turned into task specs, and tells the strategy each task's outcome once it
 * is agreed. The strategy's state lives in the database and is saved in the same transaction as
 * the tasks it produced, so a restarted (or another) coordinator continues exactly where it stopped.
 * Only one coordinator process drives the search at a time (a leased lock).
 */
import type { Hex } from 'viem';
import { spaceOps } from '../nas/spaces.ts';
import { createStrategy, restoreStrategy, type Strategy, type StrategyConfig } from '../nas/strategy.ts';
import { spaceOf, type Track, type TrackName, trackByName } from '../nas/tracks.ts';
import type { AnyTaskSpec, TaskResult } from '../protocol/index.ts';
import type { Db } from './db.ts';
import { LOCK_TTL_MS, tryLock } from './locks.ts';
import type { Store } from './store.ts';

export interface SearchConfig {
  /** A search track (src/nas/tracks.ts) or a sponsor's (./sponsored.ts): its dataset and space. */
  track: TrackName | Track;
  strategy: StrategyConfig;
  /** Largest parameter count an architecture may have. */
  maxParams?: number;
  /** Keep this many tasks open (proposed, not yet agreed) at a time. */
  queueDepth: number;
  /** Trace checkpoint interval (default: about 16 per task). */
  checkpointEvery?: number;
}

interface ProposalRecord {
  trialId: number;
}

export class SearchDriver {
  private strategy?: Strategy;

  constructor(
    private readonly db: Db,
    private readonly store: Store,
    private readonly config: SearchConfig,
    private readonly holder: string,
    /** The sponsored search this drives; null: the operator's (its tasks have no search id). */
    readonly searchId: Hex | null = null,
  ) {}

  private get track(): Track {
    const t = this.config.track;
    return typeof t === 'string' ? trackByName(t) : t;
  }

  /** A summary for GET /search (from the last state this process saw). */
  summary() {
    const s = this.strategy;
    const track = this.track.id;
    if (!s) return { kind: this.config.strategy.kind, track, running: false };
    const best = s.best();
    return {
      kind: s.kind,
      track,
      running: true,
      trials: s.trials().length,
      budget: this.config.strategy.budget,
      pending: s.pending().length,
      finished: s.isFinished(),
      best: best
        ? { trialId: best.trialId, arch: best.arch, params: best.params, outcome: best.outcome }
        : null,
      paretoFront: s.paretoFront().map((t) => ({ trialId: t.trialId, params: t.params, outcome: t.outcome })),
    };
  }

  /** Tells finished tasks to the strategy and tops the queue up. Returns tasks added. */
  async tick(): Promise<number> {
    const lock = this.searchId ? `search:${this.searchId}` : 'search';
    if (!(await tryLock(this.db, lock, this.holder, LOCK_TTL_MS))) return 0;
    const track = this.track;
    const stateId = this.searchId ?? 'main';
    const space = spaceOf(track, this.config.maxParams);
    const ops = spaceOps(space);
    return this.db.tx(async (q) => {
      const [saved] = await q.query<{ state: unknown }>(
        'SELECT state FROM search_state WHERE id = $1 FOR UPDATE',
        [stateId],
      );
      const strategy = saved ? restoreStrategy(saved.state) : createStrategy(this.config.strategy, space);
      const done = await q.query<{
        task_id: Hex;
        proposal: ProposalRecord;
        state: string;
        result: TaskResult | null;
      }>(
        `SELECT task_id, proposal, state, result FROM tasks
         WHERE NOT told AND proposal IS NOT NULL AND state IN ('agreed', 'settling', 'settled', 'failed')
           AND search_id IS NOT DISTINCT FROM $1`,
        [this.searchId],
      );
      for (const t of done) {
        const trial = strategy.trials()[t.proposal.trialId];
        if (trial?.status === 'pending') {
          strategy.tell(
            t.proposal.trialId,
            t.result && t.state !== 'failed'
              ? { valCorrect: t.result.valCorrect, valCount: t.result.valCount, valLoss: t.result.valLoss }
              : 'failed',
          );
        }
        await q.query('UPDATE tasks SET told = true WHERE task_id = $1', [t.task_id]);
      }
      const [{ n: open }] = await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks
         WHERE state IN ('open', 'refereeing') AND search_id IS NOT DISTINCT FROM $1`,
        [this.searchId],
      );
      let added = 0;
      for (let i = open; i < this.config.queueDepth; i++) {
        const p = strategy.ask();
        if (!p) break;
        const spec = ops.toSpec(track, p.arch, {
          steps: p.steps,
          seed: this.config.strategy.seed,
          checkpointEvery: this.config.checkpointEvery,
        });
        const record: ProposalRecord = { trialId: p.trialId };
        // A conv track yields v2 specs; the store keeps any spec as JSON under its taskId (the lease
        // API's v1 schema is widened with the v2 trainers, issue 13).
        const inserted = await this.store.addTask(spec as AnyTaskSpec, record, q, this.searchId);
        // The same spec proposed twice is the same task: the copy is told as failed, not waited on.
        if (!inserted) strategy.tell(p.trialId, 'failed');
        else added++;
      }
      await q.query(
        `INSERT INTO search_state (id, state, updated_at) VALUES ($3, $1::jsonb, $2)
         ON CONFLICT (id) DO UPDATE SET state = $1::jsonb, updated_at = $2`,
        [JSON.stringify(strategy.toJSON()), Date.now(), stateId],
      );
      this.strategy = strategy;
      return added;
    });
  }
}
