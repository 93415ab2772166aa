/**
 * Read models for the API: a task, the leaderboard, search progress and per-worker stats, all from
 * the database. Settled rows carry the transaction that settled them, so each entry can be checked
 * against the contract's TaskSettled events.
 */
import type { Hex } from 'viem';
import type { RankedModel } from '../chain/leaderboard.ts';
import { specCounts } from '../nas/spaces.ts';
import { ONLINE_WINDOW_MS, type SearchStatus, type SearchView, type TaskView } from '../protocol/http.ts';
import { type AnyTaskSpec, isV2, type TaskResult } from '../protocol/index.ts';
import type { Db } from './db.ts';
import { SEARCH_COLUMNS, type SearchRow, searchRow } from './searches.ts';
import { type Verification, verificationOf } from './verification.ts';

export interface LeaderboardEntry extends RankedModel {
  txHash: Hex | null;
  settledAt: number | null;
  /** How the result was verified (verification.ts): identical votes + audit, audit only, or re-executed whole. */
  verification: Verification;
}

interface TaskRow {
  task_id: Hex;
  spec: AnyTaskSpec;
  state: string;
  wanted: number;
  max_replicas: number;
  created_at: number;
  agreed_digest: Hex | null;
  agreed_at: number | null;
  result: TaskResult | null;
  referee: unknown;
  audit: unknown;
  decided_by: 'votes' | 'referee';
  tx_hash: Hex | null;
  settled_at: number | null;
  error: string | null;
}

interface SearchTaskStats {
  tasks: Record<string, number>;
  best: number | null;
}

export class Views {
  constructor(
    private readonly db: Db,
    /** The strategy's summary of the operator's search (no id) or of a sponsored one. */
    private readonly searchSummary: (searchId?: Hex) => unknown = () => null,
  ) {}

  /**
   * A task as anyone may see it. Before settlement it tells nothing an attacker could steer by: not
   * who holds a lease, not how many replicas it wants, not who voted or what; only how many votes
   * it has. Once settled, everything (who voted what, the verdicts, the audit and the referee).
   */
  async task(taskId: Hex): Promise<TaskView | undefined> {
    const [t] = await this.db.query<TaskRow>('SELECT * FROM tasks WHERE task_id = $1', [taskId]);
    if (!t) return undefined;
    const settled = t.state === 'settled';
    const votes = await this.db.query<{ worker: Hex; digest: Hex; verdict: string; received_at: number }>(
      'SELECT worker, digest, verdict, received_at FROM votes WHERE task_id = $1 ORDER BY received_at, worker',
      [taskId],
    );
    return {
      taskId,
      spec: t.spec,
      state: t.state as TaskView['state'],
      votes: votes.map((v) =>
        settled ? { worker: v.worker, receivedAt: v.received_at, digest: v.digest, verdict: v.verdict } : {},
      ),
      digest: settled ? t.agreed_digest : null,
      result: settled && t.result ? { ...t.result, checkpoints: undefined } : null,
      referee: settled ? t.referee : null,
      audit: settled ? t.audit : null,
      decidedBy: settled ? t.decided_by : null,
      txHash: t.tx_hash,
      settledAt: t.settled_at,
      createdAt: t.created_at,
      error: t.error,
    };
  }

  /** The operator's search's settled tasks, or with `searchId` one sponsored search's. */
  async leaderboard(limit = 100, searchId?: Hex): Promise<LeaderboardEntry[]> {
    const rows = await this.db.query<TaskRow>(
      `SELECT * FROM tasks WHERE state = 'settled' AND result IS NOT NULL AND search_id IS NOT DISTINCT FROM $2
       ORDER BY ((result->>'valCorrect')::float8 / (result->>'valCount')::float8) DESC,
                (result->>'valLoss')::numeric ASC, seq ASC
       LIMIT $1`,
      [limit, searchId ?? null],
    );
    return rows.map((t, i) => {
      const r = t.result!;
      const { params, flops } = specCounts(t.spec);
      return {
        rank: i + 1,
        taskId: t.task_id,
        spec: t.spec,
        hidden: isV2(t.spec) ? [] : t.spec.model.hidden,
        params,
        flops,
        steps: t.spec.training.steps,
        valCorrect: r.valCorrect,
        valCount: r.valCount,
        accuracy: r.valCorrect / r.valCount,
        valLoss: r.valLoss,
        weightsHash: r.weightsHash as Hex,
        digest: r.digest as Hex,
        txHash: t.tx_hash,
        settledAt: t.settled_at,
        verification: verificationOf(
          t.decided_by,
          (t.audit as { reexecution?: boolean; withheld?: boolean } | null)?.reexecution === true ||
            (t.audit as { withheld?: boolean } | null)?.withheld === true,
        ),
      };
    });
  }

  /**
   * `now` moves the clock the online count is judged by (tests). The operator's search, or with
   * `searchId` one sponsored search (the workers counted are the network's either way).
   */
  async search(now = Date.now(), searchId?: Hex): Promise<SearchStatus> {
    const scope = searchId ?? null;
    const counts = await this.db.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM tasks WHERE search_id IS NOT DISTINCT FROM $1 GROUP BY state',
      [scope],
    );
    const settled = await this.db.query<{ settled_at: number; c: number; n: number }>(
      `SELECT settled_at, (result->>'valCorrect')::int AS c, (result->>'valCount')::int AS n
       FROM tasks WHERE state = 'settled' AND search_id IS NOT DISTINCT FROM $1 ORDER BY settled_at, seq`,
      [scope],
    );
    let best = 0;
    const progress = settled.map((r, i) => {
      best = Math.max(best, r.c / r.n);
      return { settled: i + 1, at: r.settled_at, accuracy: r.c / r.n, best };
    });
    const [workers] = await this.db.query<{ n: number }>(
      `SELECT count(DISTINCT worker)::int AS n FROM leases WHERE issued_at > $1`,
      [now - 5 * 60_000],
    );
    const [online] = await this.db.query<{ n: number }>(
      `SELECT count(DISTINCT worker)::int AS n FROM (
         SELECT worker FROM leases
          WHERE state = 'active' AND GREATEST(issued_at, COALESCE(heartbeat_at, 0)) > $1
         UNION ALL
         SELECT worker FROM votes WHERE received_at > $1) live`,
      [now - ONLINE_WINDOW_MS],
    );
    return {
      tasks: Object.fromEntries(counts.map((r) => [r.state, r.n])),
      activeWorkers: workers.n,
      onlineWorkers: online.n,
      bestAccuracy: settled.length ? best : null,
      progress,
      strategy: this.searchSummary(searchId),
    };
  }

  /** Every sponsored search, newest first (the operator's own search is GET /search). */
  async searches(): Promise<SearchView[]> {
    const rows = await this.db.query<SearchRow>(
      `SELECT ${SEARCH_COLUMNS} FROM searches WHERE NOT operator ORDER BY seq DESC LIMIT 500`,
    );
    const stats = await this.taskStats(rows.map((r) => r.search_id));
    return rows.map((r) => this.searchView(r, stats.get(r.search_id)));
  }

  async sponsoredSearch(searchId: Hex): Promise<SearchView | undefined> {
    const row = await searchRow(this.db, searchId);
    return row && !row.operator
      ? this.searchView(row, (await this.taskStats([searchId])).get(searchId))
      : undefined;
  }

  /** Task counts by state and best settled accuracy of each search, in one query for all of them. */
  private async taskStats(ids: Hex[]): Promise<Map<Hex, SearchTaskStats>> {
    const rows = await this.db.query<{ search_id: Hex; state: string; n: number; best: number | null }>(
      `SELECT search_id, state, count(*)::int AS n,
              max((result->>'valCorrect')::float8 / (result->>'valCount')::float8)
                FILTER (WHERE state = 'settled') AS best
       FROM tasks WHERE search_id = ANY($1::text[]) GROUP BY search_id, state`,
      [ids],
    );
    const stats = new Map<Hex, SearchTaskStats>();
    for (const r of rows) {
      const s = stats.get(r.search_id) ?? { tasks: {}, best: null };
      s.tasks[r.state] = r.n;
      if (r.best !== null) s.best = r.best;
      stats.set(r.search_id, s);
    }
    return stats;
  }

  /** A search as anyone (its sponsor included) may see it: counts and totals, never who holds what. */
  searchView(row: SearchRow, stats: SearchTaskStats = { tasks: {}, best: null }): SearchView {
    const { tasks } = stats;
    const manifest = row.manifest as { description?: string; dataset: { name: string } };
    return {
      searchId: row.search_id,
      sponsor: row.sponsor,
      name: row.name,
      description: manifest.description ?? '',
      state: row.state,
      manifest: row.manifest as Record<string, unknown>,
      manifestHash: row.manifest_hash,
      dataset: {
        name: manifest.dataset.name,
        sha256: row.dataset_sha256,
        url: `/api/v1/datasets/${row.dataset_sha256}`,
      },
      rewardWei: row.reward_wei,
      budgetTasks: row.budget_tasks,
      maxSpendWei: row.max_spend_wei,
      poolWei: row.pool_wei,
      chainState: row.chain_state,
      tasks,
      spentWei: (BigInt(row.reward_wei) * BigInt(tasks.settled ?? 0)).toString(),
      bestAccuracy: stats.best,
      error: row.error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      finishedAt: row.finished_at,
    };
  }

  async worker(address: Hex) {
    const worker = address.toLowerCase();
    const leases = await this.db.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM leases WHERE lower(worker) = $1 GROUP BY state',
      [worker],
    );
    const votes = await this.db.query<{ verdict: string; settled: boolean; n: number }>(
      `SELECT v.verdict, t.state = 'settled' AS settled, count(*)::int AS n
       FROM votes v JOIN tasks t USING (task_id) WHERE lower(v.worker) = $1 GROUP BY 1, 2`,
      [worker],
    );
    const recent = await this.db.query<{
      task_id: Hex;
      state: string;
      verdict: string;
      received_at: number;
      tx_hash: Hex;
    }>(
      `SELECT v.task_id, t.state, v.verdict, v.received_at, t.tx_hash
       FROM votes v JOIN tasks t USING (task_id) WHERE lower(v.worker) = $1 AND t.state = 'settled'
       ORDER BY v.received_at DESC, v.task_id LIMIT 50`,
      [worker],
    );
    const sum = (pred: (r: { verdict: string; settled: boolean }) => boolean) =>
      votes.filter(pred).reduce((s, r) => s + r.n, 0);
    return {
      address,
      leases: Object.fromEntries(leases.map((r) => [r.state, r.n])),
      votes: sum(() => true),
      rewarded: sum((r) => r.settled && r.verdict === 'majority'),
      dissents: sum((r) => r.settled && r.verdict !== 'majority' && r.verdict !== 'pending'),
      pending: sum((r) => !r.settled),
      // Settled tasks only: which tasks a worker is on is not public before they are decided.
      recent: recent.map((r) => ({
        taskId: r.task_id,
        state: r.state,
        verdict: r.verdict,
        receivedAt: r.received_at,
        txHash: r.tx_hash,
      })),
    };
  }
}
