/**
 * What the Settlement contract pays, in one place: the contract is being reworked (v2), and every page
 * that shows an amount reads it from here, so a new payout rule changes one function.
 *
 * Today (contracts/Settlement.sol, `_settleOne`): a settled task's `rewardPerTask` is split evenly among
 * its winners (the majority whose digests agree), rounding down; dissenters get nothing and a strike.
 * When the pool runs dry the winners share what is left, so an amount shown here is an upper bound then.
 */
import type { ClaimedEvent, SettledEvent } from '../../chain/client.ts';
import { shortHex } from './format.ts';

/** Wei credited to each winner of one settled task. */
export function payoutPerWinner(rewardPerTask: bigint, winners: number): bigint {
  if (winners <= 0) throw new RangeError(`a settled task has at least one winner, got ${winners}`);
  return rewardPerTask / BigInt(winners);
}

/** What one task pays this tab when all `quorum` votes agree (the usual case). */
export function expectedPayout(rewardPerTask: bigint, quorum: number): bigint {
  return payoutPerWinner(rewardPerTask, Math.max(1, quorum));
}

export interface Settlement {
  taskId: string;
  /** Wei credited to the account; 0 for a dissent. */
  amount: bigint;
  won: boolean;
  blockNumber: bigint;
  txHash: string;
}

/** The account's settlements among `events`, each with what it was credited. */
export function settlementsOf(
  events: readonly SettledEvent[],
  account: string,
  rewardPerTask: bigint,
): Settlement[] {
  const me = account.toLowerCase();
  const isMe = (a: string) => a.toLowerCase() === me;
  return events
    .filter((e) => e.winners.some(isMe) || e.dissenters.some(isMe))
    .map((e) => {
      const won = e.winners.some(isMe);
      return {
        taskId: e.taskId,
        amount: won ? payoutPerWinner(rewardPerTask, e.winners.length) : 0n,
        won,
        blockNumber: e.blockNumber,
        txHash: e.txHash,
      };
    });
}

/** Sum of wei amounts. */
export function total(items: readonly { amount: bigint }[]): bigint {
  return items.reduce((sum, i) => sum + i.amount, 0n);
}

export interface HistoryRow {
  kind: 'settled' | 'claim';
  detail: string;
  amount: bigint;
  /** For a settlement: claimed (a later claim paid it out) or still owed. */
  state?: 'claimed' | 'owed' | 'strike';
  txHash: string;
  blockNumber: bigint;
}

/**
 * Settlements and claims, newest first. A settlement is claimed once a claim follows it: claim() pays
 * out everything owed at that moment.
 */
export function historyRows(
  history: { settlements: Settlement[]; claims: readonly ClaimedEvent[] } | undefined,
): HistoryRow[] {
  if (!history) return [];
  let lastClaim = -1n;
  for (const c of history.claims) if (c.blockNumber > lastClaim) lastClaim = c.blockNumber;
  const rows: HistoryRow[] = [
    ...history.settlements.map((s) => ({
      kind: 'settled' as const,
      detail: `${s.won ? 'Result agreed' : 'Result disagreed'} on task ${shortHex(s.taskId, 4)}`,
      amount: s.amount,
      state: s.won
        ? s.blockNumber < lastClaim
          ? ('claimed' as const)
          : ('owed' as const)
        : ('strike' as const),
      txHash: s.txHash,
      blockNumber: s.blockNumber,
    })),
    ...history.claims.map((c) => ({
      kind: 'claim' as const,
      detail: 'Claimed to your wallet',
      amount: c.amount,
      txHash: c.txHash,
      blockNumber: c.blockNumber,
    })),
  ];
  return rows.sort((a, b) => Number(b.blockNumber - a.blockNumber));
}
