/**
 * Searches in the database (docs/SPONSORS.md): rows, states and pools. A search is created once, in
 * one transaction, with its manifest; its state moves
 *
 *   funding → running ⇄ paused → finished | cancelled      (funding → cancelled too)
 *
 * `funding → running` when its pool can pay for a task (the funds loop, ./funds.ts), `running ⇄
 * paused` and `→ cancelled` by the sponsor's signed action, `→ finished` when its strategy has
 * proposed its whole budget and every task is decided. Leasing (./store.ts) reads the pool and the
 * state: only a running search starts fresh tasks, and only as many as its pool, less what its
 * leased and unsettled tasks reserved, can pay for.
 */
import type { Hex } from 'viem';
import type { Queryable } from './db.ts';
import { Refusal } from './errors.ts';

export const SEARCH_STATES = ['funding', 'running', 'paused', 'finished', 'cancelled'] as const;
export type SearchState = (typeof SEARCH_STATES)[number];

/** The states a search may move to from each state (the sponsor's actions and the coordinator's). */
export const SEARCH_TRANSITIONS: Record<SearchState, readonly SearchState[]> = {
  funding: ['running', 'cancelled'],
  running: ['paused', 'finished', 'cancelled'],
  paused: ['running', 'finished', 'cancelled'],
  finished: [],
  cancelled: [],
};

export interface NewSearch {
  searchId: Hex;
  sponsor: Hex;
  manifest: unknown;
  manifestHash: Hex;
  name: string;
  datasetSha256: Hex;
  state: SearchState;
  rewardWei: bigint;
  budgetTasks: number;
  maxSpendWei: bigint;
  operator?: boolean;
}

export interface SearchRow {
  search_id: Hex;
  seq: number;
  sponsor: Hex;
  manifest: unknown;
  manifest_hash: Hex;
  name: string;
  dataset_sha256: Hex;
  state: SearchState;
  reward_wei: string;
  budget_tasks: number;
  max_spend_wei: string;
  pool_wei: string;
  pool_read_at: number;
  ledger_wei: string;
  chain_state: 'unknown' | 'open' | 'closed';
  lease_until: number | null;
  operator: boolean;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  error: string | null;
}

/** The columns read back, with the numerics as decimal text (wei do not fit a double). */
export const SEARCH_COLUMNS = `search_id, seq, sponsor, manifest, manifest_hash, name, dataset_sha256, state,
  reward_wei::text AS reward_wei, budget_tasks, max_spend_wei::text AS max_spend_wei, pool_wei::text AS pool_wei,
  pool_read_at, ledger_wei::text AS ledger_wei, chain_state, lease_until, operator, created_at, updated_at,
  finished_at, error`;

/** Inserts a search; false when one with this id exists already. */
export async function insertSearch(q: Queryable, s: NewSearch, now = Date.now()): Promise<boolean> {
  const rows = await q.query(
    `INSERT INTO searches (search_id, sponsor, manifest, manifest_hash, name, dataset_sha256, state, reward_wei,
       budget_tasks, max_spend_wei, operator, created_at, updated_at)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8::numeric, $9, $10::numeric, $11, $12, $12)
     ON CONFLICT (search_id) DO NOTHING RETURNING 1`,
    [
      s.searchId,
      s.sponsor.toLowerCase(),
      JSON.stringify(s.manifest),
      s.manifestHash,
      s.name,
      s.datasetSha256,
      s.state,
      s.rewardWei.toString(),
      s.budgetTasks,
      s.maxSpendWei.toString(),
      s.operator ?? false,
      now,
    ],
  );
  return rows.length === 1;
}

export async function searchRow(
  q: Queryable,
  searchId: Hex,
  forUpdate = false,
): Promise<SearchRow | undefined> {
  const [row] = await q.query<SearchRow>(
    `SELECT ${SEARCH_COLUMNS} FROM searches WHERE search_id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [searchId],
  );
  return row;
}

/**
 * Moves a search to `to` if the transition is allowed from its current state (read under its row
 * lock); refuses (409) otherwise. Returns the state it had.
 */
export async function moveSearch(q: Queryable, searchId: Hex, to: SearchState, now = Date.now()) {
  const row = await searchRow(q, searchId, true);
  if (!row) throw new Refusal(404, 'unknown search');
  if (row.state === to) return row.state;
  if (!SEARCH_TRANSITIONS[row.state].includes(to))
    throw new Refusal(409, `a ${row.state} search cannot become ${to}`);
  await q.query(
    `UPDATE searches SET state = $2, updated_at = $3,
       finished_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN $3 ELSE finished_at END
     WHERE search_id = $1`,
    [searchId, to, now],
  );
  return row.state;
}

/**
 * Records a read of the search's pool. `readAt` is when the read started: a task settled after that
 * moment keeps reserving its reward, because the read may not have seen it paid.
 */
export async function recordPool(
  q: Queryable,
  searchId: Hex,
  poolWei: bigint,
  readAt: number,
  chain?: { state: 'open' | 'closed'; leaseUntil: number | null },
): Promise<void> {
  await q.query(
    `UPDATE searches SET pool_wei = $2::numeric, pool_read_at = $3,
       chain_state = coalesce($4, chain_state), lease_until = CASE WHEN $4::text IS NULL THEN lease_until ELSE $5 END
     WHERE search_id = $1`,
    [searchId, poolWei.toString(), readAt, chain?.state ?? null, chain?.leaseUntil ?? null],
  );
}

/** What a search's pool can still start now, in tasks (the SQL function leasing enforces). */
export async function searchRoom(q: Queryable, searchId: Hex, now = Date.now()): Promise<number> {
  const [{ room }] = await q.query<{ room: string }>('SELECT search_room($1, $2)::text AS room', [
    searchId,
    now,
  ]);
  return Number(room);
}
