import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  afterDroppedVotes,
  afterFailure,
  afterPass,
  afterWithholding,
  agreement,
  answerConsistent,
  answerMatches,
  auditSpans,
  DEFAULT_TRUST,
  decidedBy,
  firstDivergence,
  isEstablished,
  isTrusted,
  leaseCapFor,
  NEW_WORKER,
  needsReexecution,
  refereeSpan,
  replicasAfterVeto,
  replicasFor,
  sideUpheld,
  stragglerAfterMs,
  typicalMsPerStep,
} from './verification.ts';

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

  it('never comes back to a caught key, however many results it verifies after', () => {
    let r = afterFailure(NEW_WORKER);
    for (let i = 0; i < 10 * DEFAULT_TRUST.earnAfter; i++) r = afterPass(r);
    expect(isTrusted(r)).toBe(false);
    expect(isEstablished(r)).toBe(false);
    expect(leaseCapFor(r, 2)).toBe(1);
  });

  it('needs the bond when the coordinator requires one', () => {
    const farmed = { audited: DEFAULT_TRUST.earnAfter, failures: 0 };
    expect(isTrusted(farmed, DEFAULT_TRUST, false)).toBe(false);
    expect(replicasFor(farmed, 2, 0.99, DEFAULT_TRUST, false)).toBe(2);
    expect(replicasFor(farmed, 2, 0.99, DEFAULT_TRUST, true)).toBe(1);
  });

  it('lets a new key hold one lease until it is established', () => {
    expect(leaseCapFor(NEW_WORKER, 2)).toBe(1);
    expect(leaseCapFor({ audited: DEFAULT_TRUST.establishAfter, failures: 0 }, 2)).toBe(2);
  });

  it('halves the count of a worker that withheld its states, without a failure', () => {
    expect(afterWithholding({ audited: 401, failures: 0 })).toEqual({ audited: 200, failures: 0 });
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

describe('audit spans', () => {
  it('always checks the last interval with validation, and one other drawn interval', () => {
    const steps = [30, 60, 90, 120];
    expect(auditSpans(steps, 0)).toEqual([
      { fromStep: 0, toStep: 30, validate: false },
      { fromStep: 90, toStep: 120, validate: true },
    ]);
    expect(auditSpans(steps, 0.99)).toEqual([
      { fromStep: 60, toStep: 90, validate: false },
      { fromStep: 90, toStep: 120, validate: true },
    ]);
    expect(auditSpans([8], 0.5)).toEqual([{ fromStep: 0, toStep: 8, validate: true }]);
  });

  it('draws the other interval uniformly among the non-last ones (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 40 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (n, d) => {
          const steps = Array.from({ length: n }, (_, i) => (i + 1) * 5);
          const spans = auditSpans(steps, d);
          expect(spans).toHaveLength(2);
          expect(spans[1]).toEqual({ fromStep: steps[n - 2], toStep: steps[n - 1], validate: true });
          expect(spans[0].toStep).toBeLessThan(steps[n - 1]);
          expect(spans[0].toStep - spans[0].fromStep).toBe(5);
        },
      ),
    );
  });

  it('matches an answer only when the hash (and, for the last, every metric) is the voted one', () => {
    const voted = {
      checkpoints: [
        { step: 4, stateHash: '0xa' },
        { step: 8, stateHash: '0xb' },
      ],
      weightsHash: '0xw',
      valCorrect: 7,
      valCount: 10,
      valLoss: '123',
    };
    const last = { fromStep: 4, toStep: 8, validate: true };
    const answer = { stateHash: '0xb', weightsHash: '0xw', valCorrect: 7, valCount: 10, valLoss: '123' };
    expect(answerMatches(last, voted, answer)).toBe(true);
    expect(answerMatches(last, voted, { ...answer, valCorrect: 8 })).toBe(false);
    expect(answerMatches(last, voted, { ...answer, stateHash: '0xc' })).toBe(false);
    expect(answerMatches({ fromStep: 0, toStep: 4, validate: false }, voted, { stateHash: '0xa' })).toBe(
      true,
    );
    expect(answerMatches({ fromStep: 0, toStep: 5, validate: false }, voted, { stateHash: '0xa' })).toBe(
      false,
    );
  });

  it('re-executes a result entering the top ranks, once', () => {
    expect(needsReexecution(0, 20, false)).toBe(true);
    expect(needsReexecution(19, 20, false)).toBe(true);
    expect(needsReexecution(20, 20, false)).toBe(false);
    expect(needsReexecution(0, 20, true)).toBe(false);
  });
});

describe('disputes bisected to one step', () => {
  const h = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
  const honest = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => h(from + i + 1));

  it('finds the first step where two lists part, and the referee recomputes exactly that step (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 60 }),
        fc.nat(),
        (from, length, k) => {
          const span = { fromStep: from, toStep: from + length, validate: false };
          const truth = honest(from, from + length);
          const planted = from + 1 + (k % length); // the liar's first wrong step
          const liar = truth.map((x, i) => (from + i + 1 >= planted ? h(10_000 + i) : x));
          const d = firstDivergence(span, truth, liar);
          expect(d).toEqual({
            agreedStep: planted - 1,
            agreedHash: planted - 1 === from ? undefined : h(planted - 1),
            diverges: true,
          });
          expect(refereeSpan(d)).toEqual({ fromStep: planted - 1, toStep: planted, validate: false });
          const referee = { stateHash: h(planted) };
          expect(sideUpheld(span, d, { stateHash: truth.at(-1)!, stepHashes: truth }, referee)).toBe(true);
          expect(sideUpheld(span, d, { stateHash: liar.at(-1)!, stepHashes: liar }, referee)).toBe(false);
        },
      ),
    );
  });

  it('sends equal lists to a validation of the agreed state', () => {
    const span = { fromStep: 4, toStep: 8, validate: true };
    const list = honest(4, 8);
    const d = firstDivergence(span, list, list);
    expect(d).toEqual({ agreedStep: 8, agreedHash: h(8), diverges: false });
    expect(refereeSpan(d)).toEqual({ fromStep: 8, toStep: 8, validate: true });
    const truth = { stateHash: h(8), weightsHash: h(1), valCorrect: 50, valCount: 64, valLoss: '9' };
    expect(sideUpheld(span, d, { ...truth, stepHashes: list }, truth)).toBe(true);
    expect(sideUpheld(span, d, { ...truth, valCorrect: 60, stepHashes: list }, truth)).toBe(false);
  });

  it("counts a side's list consistent only when it covers every step and ends at that side's answer", () => {
    const span = { fromStep: 2, toStep: 6, validate: false };
    const list = honest(2, 6);
    const answer = { stateHash: h(6), stepHashes: list };
    expect(answerConsistent(span, 'steps', { stateHash: h(6) }, answer)).toBe(true);
    expect(
      answerConsistent(span, 'steps', { stateHash: h(6) }, { ...answer, stepHashes: list.slice(1) }),
    ).toBe(false);
    expect(answerConsistent(span, 'steps', { stateHash: h(6) }, { stateHash: h(6) })).toBe(false);
    expect(answerConsistent(span, 'steps', { stateHash: h(7) }, answer)).toBe(false); // not what it answered before
    expect(
      answerConsistent(
        span,
        'steps',
        { stateHash: h(6) },
        { stateHash: h(6), stepHashes: [...list.slice(0, 3), h(9)] },
      ),
    ).toBe(false);
    expect(answerConsistent(span, 'hash', { stateHash: h(6) }, { stateHash: h(6) })).toBe(true);
  });
});

describe('straggler reissue', () => {
  const params = { factor: 4, minSamples: 5, floorMs: 60_000 };
  it('waits for enough samples, takes the 90th percentile, and never reissues before the floor', () => {
    expect(typicalMsPerStep([1, 2, 3, 4], params)).toBeNull();
    expect(stragglerAfterMs(null, 1000, params)).toBe(Number.POSITIVE_INFINITY);
    const samples = Array.from({ length: 10 }, (_, i) => i + 1); // 1..10 ms per step
    expect(typicalMsPerStep(samples, params)).toBe(10);
    expect(stragglerAfterMs(10, 5000, params)).toBe(200_000); // 4 × 10 ms × 5,000 steps
    expect(stragglerAfterMs(10, 100, params)).toBe(60_000); // 4 s of work: the floor
  });
});
