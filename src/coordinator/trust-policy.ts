/**
 * The agreement and trust rules, as pure functions (no database): what a task's votes decide, and
 * how many replicas a task gets when a worker leases it (adaptive replication after BOINC, made safe
 * by audits). docs/TRUST.md argues the parameters.
 *
 * Agreement: any disagreement goes straight to the referee (no 2-of-3 shortcut that a colluder
 * grabbing the extra replica could win); once every wanted replica has voted the same digest, the
 * task is audited before it may settle. Nothing is decided by votes alone.
 *
 * Trust: a worker earns trust with results that passed an audit and loses all of it on any failure
 * (a wrong vote, a failed audit). A trusted worker's fresh task may run as a single replica plus the
 * audit, except a random share that is still fully replicated; new workers are always replicated.
 */

export interface TrustParams {
  /** Audited correct results since the last failure before a worker counts as trusted. */
  earnAfter: number;
  /** Share of a trusted worker's tasks that are still fully replicated (chosen at random). */
  fullReplicationShare: number;
}

export const DEFAULT_TRUST: TrustParams = { earnAfter: 5, fullReplicationShare: 0.1 };

/** What the coordinator knows of a worker's record. */
export interface TrustRecord {
  /** Results of this worker that passed an audit since its last failure. */
  audited: number;
  /** Failures ever (a wrong vote, a failed audit). */
  failures: number;
}

export const NEW_WORKER: TrustRecord = { audited: 0, failures: 0 };

export function isTrusted(record: TrustRecord, params: TrustParams = DEFAULT_TRUST): boolean {
  return record.audited >= params.earnAfter;
}

/** The record after an audited correct result. */
export function afterPass(record: TrustRecord): TrustRecord {
  return { audited: record.audited + 1, failures: record.failures };
}

/** The record after any failure: all trust earned so far is gone. */
export function afterFailure(record: TrustRecord): TrustRecord {
  return { audited: 0, failures: record.failures + 1 };
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
): number {
  return isTrusted(record, params) && draw >= params.fullReplicationShare ? 1 : initial;
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
