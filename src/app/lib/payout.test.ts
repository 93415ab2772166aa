import { describe, expect, it } from 'vitest';
import type { SettledEvent } from '../../chain/client.ts';
import { expectedPayout, historyRows, payoutPerWinner, settlementsOf, total } from './payout.ts';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000bb';
const C = '0x00000000000000000000000000000000000000cc';

function event(taskId: string, winners: string[], dissenters: string[] = [], block = 7n): SettledEvent {
  return {
    taskId: taskId as `0x${string}`,
    seq: 0n,
    digest: '0x00',
    refereed: false,
    spec: '',
    searchId: '0x00',
    batchId: 1n,
    weightsHash: '0x00',
    traceRoot: '0x00',
    valCorrect: 1,
    valCount: 2,
    valLoss: 0n,
    winners: winners as `0x${string}`[],
    dissenters: dissenters as `0x${string}`[],
    blockNumber: block,
    txHash: '0xab',
    logIndex: 0,
  };
}

describe('payout', () => {
  it('splits the reward among the winners, rounding down as the contract does', () => {
    expect(payoutPerWinner(1_000_000_000_000_000n, 2)).toBe(500_000_000_000_000n);
    expect(payoutPerWinner(10n, 3)).toBe(3n);
    expect(expectedPayout(1_000_000_000_000_000n, 2)).toBe(500_000_000_000_000n);
  });

  it('refuses a task without winners', () => {
    expect(() => payoutPerWinner(10n, 0)).toThrow(/at least one winner/);
  });

  it("credits the account's wins and nothing for a dissent", () => {
    const rows = settlementsOf(
      [event('0x01', [A, B]), event('0x02', [B, C], [A]), event('0x03', [B, C])],
      A.toUpperCase().replace('0X', '0x'),
      90n,
    );
    expect(rows.map((r) => [r.taskId, r.won, r.amount])).toEqual([
      ['0x01', true, 45n],
      ['0x02', false, 0n],
    ]);
    expect(total(rows)).toBe(45n);
  });
});

describe('history', () => {
  it('marks settlements before the last claim as claimed and later ones as owed, newest first', () => {
    const settlements = settlementsOf(
      [event('0x01', [A, B], [], 5n), event('0x02', [B, C], [A], 6n), event('0x03', [A, B], [], 9n)],
      A,
      90n,
    );
    const claims = [
      { worker: A as `0x${string}`, amount: 45n, blockNumber: 8n, txHash: '0xcd' as `0x${string}` },
    ];
    const rows = historyRows({ settlements, claims });
    expect(rows.map((r) => [r.kind, r.blockNumber, r.amount, r.state])).toEqual([
      ['settled', 9n, 45n, 'owed'],
      ['claim', 8n, 45n, undefined],
      ['settled', 6n, 0n, 'strike'],
      ['settled', 5n, 45n, 'claimed'],
    ]);
  });
});
