/**
 * The funds loop: what the chain says about each sponsor's search, copied into its row (docs/SPONSORS.md).
 * Leasing (./store.ts) reads only the row, so a search starts work once its pool on chain can pay a task,
 * and stops starting work when the pool, less the rewards its leased tasks reserved, runs out.
 *
 * Per search that is not finished or cancelled, one `searchOf` read:
 * - not on chain yet, or opened there by another account or at another reward than the row's: it stays
 *   (or goes back to) `funding` with the mismatch in `error`, and gets no work; the coordinator never
 *   pays volunteers from a pool whose terms it did not agree to;
 * - open with a pool that pays a task: `funding → running`;
 * - closed by its sponsor: a running search is paused (nothing new starts) and `lease_until` is set so
 *   that no lease is handed out that could end after the chain stops settling it.
 */
import type { Hex } from 'viem';
import type { ChainPublicClient } from '../chain/client.ts';
import { searchOf } from '../chain/searches.ts';
import type { Db } from './db.ts';
import { moveSearch, recordPool, SEARCH_COLUMNS, type SearchRow } from './searches.ts';

export interface FundsOptions {
  /** The longest a lease may run (the store's maxLeaseMs): a closed search's leases must end before it stops settling. */
  maxLeaseMs: number;
  /** Time kept after the last lease for its result to be verified and settled. */
  settleMarginMs?: number;
  log?: (msg: string) => void;
}

const DEFAULT_SETTLE_MARGIN_MS = 5 * 60_000;

/** One pass over the live searches; returns how many it read (0: nothing for leasing to refresh). */
export async function syncFunds(
  db: Db,
  client: Pick<ChainPublicClient, 'readContract'>,
  settlement: Hex,
  opts: FundsOptions,
): Promise<number> {
  const rows = await db.query<SearchRow>(
    // A finished or cancelled search is still read while it holds money or is open on chain: its
    // sponsor closes it and withdraws, and the dashboard shows that.
    `SELECT ${SEARCH_COLUMNS} FROM searches WHERE NOT operator AND (state IN ('funding', 'running', 'paused')
       OR (state IN ('finished', 'cancelled') AND error IS NULL AND (pool_wei > 0 OR chain_state <> 'closed')))`,
  );
  for (const row of rows) {
    const readAt = Date.now();
    const chain = await searchOf(client, settlement, row.search_id);
    const mismatch = !chain
      ? 'not opened on chain yet'
      : chain.sponsor.toLowerCase() !== row.sponsor.toLowerCase()
        ? `opened on chain by ${chain.sponsor}, not its sponsor`
        : chain.rewardPerTask !== BigInt(row.reward_wei)
          ? `its reward on chain is ${chain.rewardPerTask} wei, not ${row.reward_wei}`
          : null;
    const closed = chain !== undefined && chain.settleUntil !== 0n;
    const margin = opts.maxLeaseMs + (opts.settleMarginMs ?? DEFAULT_SETTLE_MARGIN_MS);
    const leaseUntil = closed ? Number(chain.settleUntil) * 1000 - margin : null;
    await db.tx(async (q) => {
      await recordPool(q, row.search_id, mismatch ? 0n : (chain?.pool ?? 0n), readAt, {
        state: closed ? 'closed' : 'open',
        leaseUntil,
      });
      if (row.error !== mismatch) {
        await q.query('UPDATE searches SET error = $2 WHERE search_id = $1', [row.search_id, mismatch]);
      }
      if (mismatch) {
        if (row.state === 'running') await moveSearch(q, row.search_id, 'paused');
        return;
      }
      if (closed && row.state === 'running') {
        await moveSearch(q, row.search_id, 'paused');
        opts.log?.(`search ${row.search_id}: closed on chain by its sponsor; paused`);
      } else if (!closed && row.state === 'funding' && chain && chain.pool >= chain.rewardPerTask) {
        await moveSearch(q, row.search_id, 'running');
        opts.log?.(`search ${row.search_id}: funded on chain (${chain.pool} wei); running`);
      }
    });
  }
  return rows.length;
}
