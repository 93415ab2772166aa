/**
 * The verification rules, as pure functions (no database, no CPU reference): what a task's votes
 * decide, which intervals an audit checks, when a result must be re-executed before it counts, and
 * how trust is earned and lost. The database side is ./audit.ts (drawing and resolving audits),
 * ./audit-jobs.ts (handing the audit work to workers) and ./store.ts; docs/TRUST.md argues the
 * parameters with the attacker's arithmetic.
 *
 * Agreement: any disagreement goes straight to the referee (no 2-of-3 shortcut that a colluder
 * grabbing the extra replica could win); once every wanted replica has voted the same digest, the
 * task is audited before it may settle. Nothing is decided by votes alone.
 *
 * Audits: the last checkpoint interval always (where a lie moves the accuracy the search sees, and
 * whose check includes the validation) and one more drawn uniformly from the others, each recomputed
 * by a worker that never held the task, drawn after the votes are in.
 *
 * Trust: a worker earns trust with verified results and loses it for good on a proven failure (a
 * wrong vote, a wrong audit answer): a caught key never becomes trusted again. A trusted worker's
 * fresh task may run as a single replica plus the audit (when the coordinator requires a bond, only
 * while its bond on chain covers `minBond`), except a random share that is still fully replicated;
 * other workers are always replicated.
 */
export interface TrustParams {
  /** Verified correct results before a worker (never caught) counts as trusted. */
  earnAfter: number;
  /** Share of a trusted worker's tasks that are still fully replicated (chosen at random). */
  fullReplicationShare: number;
  /** Verified results before a worker counts as established: it may then hold `maxLiveLeases`. */
  establishAfter: number;
}

/**
 * earnAfter 400: with audits catching a lie in a chosen interval with probability p ≈ 0.13 (two
 * intervals of ten, two auditors in three honest), a patient cheater's lies are at most
 * α·((1−p)/p)/(earnAfter + 1/p) ≈ 0.5% of settled results (docs/TRUST.md, "The arithmetic").
 */
export const DEFAULT_TRUST: TrustParams = { earnAfter: 400, fullReplicationShare: 0.1, establishAfter: 10 };

/** What the coordinator knows of a worker's record. */
export interface TrustRecord {
  /** Results of this worker that were verified (passed an audit, or matched an audit's answer). */
  audited: number;
  /** Proven failures ever (a wrong vote, a wrong audit answer): kept for good, whatever follows. */
  failures: number;
}

export const NEW_WORKER: TrustRecord = { audited: 0, failures: 0 };

/**
 * Trusted: enough verified results, never caught, and (when the coordinator requires one) bonded.
 * A caught key stays untrusted: re-earning trust on the same key after a catch was how one cabal
 * won 39 of its 85 wrong results.
 */
export function isTrusted(record: TrustRecord, params: TrustParams = DEFAULT_TRUST, bonded = true): boolean {
  return bonded && record.failures === 0 && record.audited >= params.earnAfter;
}

/** Established: enough verified results and never caught (a new or caught key holds one lease). */
export function isEstablished(record: TrustRecord, params: TrustParams = DEFAULT_TRUST): boolean {
  return record.failures === 0 && record.audited >= params.establishAfter;
}

/** Live leases a worker may hold: 1 until established, then the coordinator's cap. */
export function leaseCapFor(record: TrustRecord, cap: number, params: TrustParams = DEFAULT_TRUST): number {
  return isEstablished(record, params) ? cap : Math.min(1, cap);
}

/** The record after an audited correct result. */
export function afterPass(record: TrustRecord): TrustRecord {
  return { audited: record.audited + 1, failures: record.failures };
}

/** The record after a proven failure: all trust earned so far is gone, and the failure stays. */
export function afterFailure(record: TrustRecord): TrustRecord {
  return { audited: 0, failures: record.failures + 1 };
}

/**
 * The record after withholding the states an audit asked for: not proof of a lie (a tab reloads, a
 * worker restarts), but the task then costs a full re-execution, so it halves the worker's count.
 */
export function afterWithholding(record: TrustRecord): TrustRecord {
  return { audited: Math.floor(record.audited / 2), failures: record.failures };
}

/**
 * Replicas for a task that `record`'s worker is the first to lease: 1 for a trusted worker unless
 * `draw` (uniform in [0, 1), drawn by the coordinator at lease time, unseen by the worker) falls in
 * the fully replicated share; otherwise `initial`.
 */
export function replicasFor(
  record: TrustRecord,
  initial: number,
  draw: number,
  params: TrustParams = DEFAULT_TRUST,
  bonded = true,
): number {
  return isTrusted(record, params, bonded) && draw >= params.fullReplicationShare ? 1 : initial;
}

export type Agreement =
  /** Wait for more votes. */
  | { kind: 'wait' }
  /** Every wanted replica voted this digest: audit it before it may settle. */
  | { kind: 'audit'; digest: string }
  /** Votes disagree: the bisection referee decides. */
  | { kind: 'referee' };

/** What the votes of a task decide, given the replicas it wants. */
export function agreement(digests: readonly string[], wanted: number): Agreement {
  const distinct = new Set(digests);
  if (distinct.size > 1) return { kind: 'referee' };
  if (digests.length < wanted || distinct.size === 0) return { kind: 'wait' };
  return { kind: 'audit', digest: digests[0] };
}

/**
 * Who decided an agreed task, for the settler: 'votes' only when at least `quorum` identical votes
 * and no other vote decided it and the audit passed; 'referee' when the referee or an audit had to
 * (a disagreement, a failed audit, a single audited replica).
 */
export function decidedBy(
  votesForDigest: number,
  otherVotes: number,
  quorum: number,
  refereed: boolean,
): 'votes' | 'referee' {
  return !refereed && otherVotes === 0 && votesForDigest >= quorum ? 'votes' : 'referee';
}

/**
 * What the settler does with an agreed task once it has dropped the votes the contract would skip
 * (a grant that expired or was revoked: a veto). `winners` and `losers` count the valid votes left
 * for and against the agreed digest. 'settle': as decided. 'verdict': too few valid winners for a
 * vote-decided settlement, but the referee's verdict carries any number (the digest passed the audit,
 * as a trusted worker's single replica does). 'reopen': no valid winner is left (or no verdict can be
 * signed): the task goes back to leasing with the dropped voters excluded and the valid votes kept.
 */
export type AfterDrops = 'settle' | 'verdict' | 'reopen';

export function afterDroppedVotes(
  winners: number,
  losers: number,
  quorum: number,
  refereed: boolean,
  canSignVerdict: boolean,
): AfterDrops {
  if (winners === 0) return 'reopen';
  if (refereed) return 'settle';
  if (winners >= quorum && 2 * winners > winners + losers) return 'settle';
  return canSignVerdict ? 'verdict' : 'reopen';
}

/** Fresh replicas a reopened task wants: enough that its valid winners plus them reach the quorum. */
export function replicasAfterVeto(winners: number, quorum: number): number {
  return Math.max(1, quorum - winners);
}

/**
 * One piece of audit work: recompute (fromStep, toStep] from the state at `fromStep` (the initial
 * weights when 0) and report the state hash at `toStep`; with `validate`, also the validation of the
 * state there (the last interval) and the hash of its parameters.
 */
export interface AuditSpan {
  fromStep: number;
  toStep: number;
  validate: boolean;
}

/**
 * The audit of a task whose trace has checkpoints at `steps` (ascending, the last is the final
 * step): the last interval always, plus one more interval drawn with `draw` (uniform in [0, 1),
 * drawn after the votes are in) from the others. A task of one interval is audited whole.
 */
export function auditSpans(steps: readonly number[], draw: number): AuditSpan[] {
  const n = steps.length;
  const start = (i: number) => (i === 0 ? 0 : steps[i - 1]);
  const last: AuditSpan = { fromStep: start(n - 1), toStep: steps[n - 1], validate: true };
  if (n === 1) return [last];
  const other = Math.min(n - 2, Math.floor(draw * (n - 1)));
  return [{ fromStep: start(other), toStep: steps[other], validate: false }, last];
}

/** The whole task as one span: a full re-execution (withheld states, a result entering the top). */
export function wholeTask(steps: readonly number[]): AuditSpan[] {
  return [{ fromStep: 0, toStep: steps[steps.length - 1], validate: true }];
}

/** What an auditor reports for a span (the wire form is AuditAnswerSchema in src/protocol/http.ts). */
export interface AuditAnswer {
  stateHash: string;
  weightsHash?: string;
  valCorrect?: number;
  valCount?: number;
  valLoss?: string;
  /** A dispute's side: the state hash after each step of the span. */
  stepHashes?: readonly string[];
}

/** The voters' claim for a span, read off their result: the trace's hash at toStep, and the metrics. */
export interface VotedResult {
  checkpoints: readonly { step: number; stateHash: string }[];
  weightsHash: string;
  valCorrect: number;
  valCount: number;
  valLoss: string;
}

/**
 * What the voters claim an auditor of `span` must answer, read off their result (undefined when the
 * trace has no checkpoint at toStep: no valid trace lacks one).
 */
export function claimOf(span: AuditSpan, voted: VotedResult): AuditAnswer | undefined {
  const claimed = voted.checkpoints.find((c) => c.step === span.toStep);
  if (!claimed) return undefined;
  if (!span.validate) return { stateHash: claimed.stateHash };
  const { weightsHash, valCorrect, valCount, valLoss } = voted;
  return { stateHash: claimed.stateHash, weightsHash, valCorrect, valCount, valLoss };
}

/** Whether an answer for `span` is the claim (bit-identical training, so plain equality). */
export function answersAgree(span: AuditSpan, claim: AuditAnswer, answer: AuditAnswer): boolean {
  if (claim.stateHash !== answer.stateHash) return false;
  if (!span.validate) return true;
  return (
    answer.weightsHash === claim.weightsHash &&
    answer.valCorrect === claim.valCorrect &&
    answer.valCount === claim.valCount &&
    answer.valLoss === claim.valLoss
  );
}

/**
 * Whether an answer is what was expected of it: the claim for an audit; for a dispute's side, its
 * own earlier answer, and with report 'steps' a hash for every step ending at that answer's hash (an
 * honest worker's lists are always consistent, so an inconsistent one is proof of a lie).
 */
export function answerConsistent(
  span: AuditSpan,
  report: 'hash' | 'steps' | 'state',
  expected: AuditAnswer,
  answer: AuditAnswer,
): boolean {
  if (!answersAgree(span, expected, answer)) return false;
  if (report !== 'steps') return true;
  const hashes = answer.stepHashes;
  return hashes?.length === span.toStep - span.fromStep && hashes.at(-1) === answer.stateHash;
}

/**
 * Disputes bisected to one step (Verde's refereed delegation): two consistent per-step lists over a
 * span, from the same verified start, part for the first time after `agreedStep`; the referee then
 * recomputes the one step (agreedStep, agreedStep + 1] from the state both agree on. Lists that
 * never part disagree only on the validation at toStep: the referee validates that state.
 */
export interface Divergence {
  agreedStep: number;
  /** The state hash both sides report at agreedStep (undefined at the span's start: the upload's). */
  agreedHash?: string;
  /** False: the lists are equal, the dispute is over the validation at toStep. */
  diverges: boolean;
}

export function firstDivergence(span: AuditSpan, a: readonly string[], b: readonly string[]): Divergence {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return { agreedStep: span.fromStep + i, agreedHash: a[i - 1], diverges: true };
  }
  return { agreedStep: span.toStep, agreedHash: a.at(-1), diverges: false };
}

/** The referee's work for a divergence: one training step, or the validation of the agreed state. */
export function refereeSpan(d: Divergence): AuditSpan {
  return d.diverges
    ? { fromStep: d.agreedStep, toStep: d.agreedStep + 1, validate: false }
    : { fromStep: d.agreedStep, toStep: d.agreedStep, validate: true };
}

/** Whether a side's answer agrees with the referee's recomputation of the divergence. */
export function sideUpheld(span: AuditSpan, d: Divergence, side: AuditAnswer, truth: AuditAnswer): boolean {
  if (d.diverges) return side.stepHashes?.[d.agreedStep - span.fromStep] === truth.stateHash;
  return answersAgree({ ...span, validate: true }, truth, side);
}

/** Whether an auditor's answer for `span` matches the voted result. */
export function answerMatches(span: AuditSpan, voted: VotedResult, answer: AuditAnswer): boolean {
  const claim = claimOf(span, voted);
  return claim !== undefined && answersAgree(span, claim, answer);
}

/**
 * Whether a result that passed its audit must also be re-executed in full by an independent worker
 * before it counts: when it would enter the search's `top` ranks (the leaderboard's first rows, the
 * evolution's parents and the search's reported best are all drawn from there). `better` counts the
 * search's decided results strictly more accurate than it. Already re-executed: no.
 */
/** The leaderboard's first rows (and so every evolution parent and reported best) are re-executed. */
export const REEXECUTE_TOP = 20;

export function needsReexecution(better: number, top: number, reexecuted: boolean): boolean {
  return !reexecuted && better < top;
}

/** How a decided result was verified, as the API and the app show it. */
export type Verification =
  /** At least `quorum` independent identical votes, and the audit passed. */
  | 'votes'
  /** Fewer votes (a trusted worker's single replica, a refereed side), and the audit passed. */
  | 'audit'
  /** Re-executed in full by an independent worker, bit-identical. */
  | 're-executed';

export function verificationOf(decidedBy: 'votes' | 'referee', reexecuted: boolean): Verification {
  if (reexecuted) return 're-executed';
  return decidedBy === 'votes' ? 'votes' : 'audit';
}

/**
 * Straggler reissue: a lease still running `factor` × the typical time for its task's steps is taken
 * back (its slot reissued to another worker) before its deadline, so a hoarder that heartbeats and
 * never submits blocks a slot for a few typical task times, not for `maxLeaseMs`. Typical: the 90th
 * percentile of milliseconds per step over recent leases that ended in a vote; no early reissue until
 * `minSamples` are known, never before `floorMs` (a slow honest worker within 4 × the slow tail of
 * the network keeps its lease).
 */
export interface StragglerParams {
  factor: number;
  minSamples: number;
  floorMs: number;
}

export const DEFAULT_STRAGGLER: StragglerParams = { factor: 4, minSamples: 20, floorMs: 60_000 };

/** The typical milliseconds per step (the 90th percentile), or null with fewer than `minSamples`. */
export function typicalMsPerStep(
  samples: readonly number[],
  params: StragglerParams = DEFAULT_STRAGGLER,
): number | null {
  if (samples.length < params.minSamples) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(0.9 * sorted.length))];
}

/** How long a lease of a `steps`-step task may run before it is reissued (Infinity: not yet known). */
export function stragglerAfterMs(
  msPerStep: number | null,
  steps: number,
  params: StragglerParams = DEFAULT_STRAGGLER,
): number {
  if (msPerStep === null) return Number.POSITIVE_INFINITY;
  return Math.max(params.floorMs, params.factor * msPerStep * steps);
}
