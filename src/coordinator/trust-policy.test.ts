import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  afterDroppedVotes,
  afterFailure,
  afterPass,
  agreement,
  DEFAULT_TRUST,
  decidedBy,
  isTrusted,
  NEW_WORKER,
  replicasAfterVeto,
  replicasFor,
} from './trust-policy.ts';

describe('agreement rule', () => {
  it('waits for every wanted replica, audits unanimous votes and referees any disagreement', () => {
    expect(agreement([], 2)).toEqual({ kind: 'wait' });
    expect(agreement(['a'], 2)).toEqual({ kind: 'wait' });
    expect(agreement(['a', 'a'], 2)).toEqual({ kind: 'audit', digest: 'a' });
    expect(agreement(['a'], 1)).toEqual({ kind: 'audit', digest: 'a' });
    // No 2-of-3 shortcut: one dissent among many sends the task to the referee.
    expect(agreement(['a', 'b'], 2)).toEqual({ kind: 'referee' });
    expect(agreement(['a', 'a', 'b'], 3)).toEqual({ kind: 'referee' });
  });

  it('never lets votes alone settle a digest another vote disputes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        (d, w) => {
          const outcome = agreement(d, w);
          if (new Set(d).size > 1) expect(outcome.kind).toBe('referee');
          else if (outcome.kind === 'audit') expect(d.length).toBeGreaterThanOrEqual(w);
        },
      ),
    );
  });

  it("says who decided: 'votes' only for a quorum of identical votes with no dispute", () => {
    expect(decidedBy(2, 0, 2, false)).toBe('votes');
    expect(decidedBy(1, 0, 2, false)).toBe('referee'); // a single audited replica
    expect(decidedBy(2, 1, 2, false)).toBe('referee');
    expect(decidedBy(3, 0, 2, true)).toBe('referee');
  });
});

describe('trust', () => {
  it('is earned by audited results and lost on any failure', () => {
    let r = NEW_WORKER;
    for (let i = 0; i < DEFAULT_TRUST.earnAfter; i++) {
      expect(isTrusted(r)).toBe(false);
      r = afterPass(r);
    }
    expect(isTrusted(r)).toBe(true);
    r = afterFailure(r);
    expect(isTrusted(r)).toBe(false);
    expect(r).toEqual({ audited: 0, failures: 1 });
  });

  it('replicates new workers fully and a random share of a trusted worker’s tasks', () => {
    const trusted = { audited: DEFAULT_TRUST.earnAfter, failures: 0 };
    expect(replicasFor(NEW_WORKER, 2, 0.99)).toBe(2);
    expect(replicasFor(trusted, 2, 0.99)).toBe(1);
    expect(replicasFor(trusted, 2, DEFAULT_TRUST.fullReplicationShare / 2)).toBe(2);
    const draws = Array.from({ length: 10_000 }, (_, i) => (i + 0.5) / 10_000);
    const full = draws.filter((d) => replicasFor(trusted, 2, d) === 2).length / draws.length;
    expect(full).toBeCloseTo(DEFAULT_TRUST.fullReplicationShare, 2);
  });
});

describe('votes dropped before settlement (a veto)', () => {
  it('settles what a valid majority still carries, turns too few winners into a verdict, reopens none', () => {
    // winners, losers, quorum, refereed, canSignVerdict
    expect(afterDroppedVotes(2, 0, 2, false, true)).toBe('settle');
    expect(afterDroppedVotes(1, 0, 2, false, true)).toBe('verdict');
    expect(afterDroppedVotes(1, 0, 2, false, false)).toBe('reopen');
    expect(afterDroppedVotes(0, 0, 2, false, true)).toBe('reopen');
    // A refereed task settles on one valid winner, never on none.
    expect(afterDroppedVotes(1, 2, 2, true, true)).toBe('settle');
    expect(afterDroppedVotes(0, 1, 2, true, true)).toBe('reopen');
    expect(replicasAfterVeto(0, 2)).toBe(2);
    expect(replicasAfterVeto(1, 2)).toBe(1);
    expect(replicasAfterVeto(3, 2)).toBe(1);
  });

  it('never settles without a valid winner, nor by votes alone without a strict valid majority (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 2, max: 4 }),
        fc.boolean(),
        fc.boolean(),
        (won, lost, quorum, refereed, key) => {
          const after = afterDroppedVotes(won, lost, quorum, refereed, key);
          if (won === 0) expect(after).toBe('reopen');
          if (after === 'settle' && !refereed) expect(won >= quorum && 2 * won > won + lost).toBe(true);
          if (after === 'verdict') expect(key).toBe(true);
        },
      ),
    );
  });
});
