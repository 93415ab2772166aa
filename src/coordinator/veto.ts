/**
 * Vetoes (docs/TRUST.md): a voter whose grant expired or whose session key was revoked before its task
 * settled has a vote the contract skips. The settler drops such votes before it simulates; this
 * records what that did to the task (the rule is `afterDroppedVotes` in ./verification.ts):
 *
 * - the dropped votes become `vetoed` (whatever else happens): they earn nothing, count in no agreement and are never sent
 *   on chain again (an invalid vote cannot be struck there, so the vetoing worker loses its earned
 *   trust instead, as on any failure);
 * - 'settle': enough valid votes remain; the task settles as decided;
 * - 'verdict': the valid winners left are fewer than the quorum, so the task settles under the
 *   referee's verdict (`decided_by = 'referee'`), as an audited single replica does;
 * - 'reopen': no valid winner is left. The task goes back to leasing for fresh replicas: its other
 *   votes are kept (pending again, with the audit and referee records cleared, so the new round is
 *   agreed, audited or refereed from scratch and never trusts the vetoed side's digest), and every
 *   dropped voter, having held a lease on it, is never handed it again.
 */
import type { Hex } from 'viem';
import type { Queryable } from './db.ts';
import { afterFailure, type TrustRecord } from './verification.ts';

export interface Veto {
  taskId: Hex;
  /** Workers whose votes the contract would skip. */
  dropped: string[];
  after: 'settle' | 'verdict' | 'reopen';
  /** Fresh replicas a reopened task wants. */
  fresh: number;
}

/** Applies a veto in the caller's transaction (the task is in the settler's batch, state 'settling'). */
export async function applyVeto(q: Queryable, veto: Veto): Promise<void> {
  await q.query(`UPDATE votes SET verdict = 'vetoed' WHERE task_id = $1 AND worker = ANY($2::text[])`, [
    veto.taskId,
    veto.dropped,
  ]);
  await loseTrust(q, veto.dropped);
  if (veto.after === 'settle') return;
  if (veto.after === 'verdict') {
    await q.query(`UPDATE tasks SET decided_by = 'referee' WHERE task_id = $1`, [veto.taskId]);
    return;
  }
  await q.query(`UPDATE votes SET verdict = 'pending' WHERE task_id = $1 AND verdict <> 'vetoed'`, [
    veto.taskId,
  ]);
  const [{ kept }] = await q.query<{ kept: number }>(
    `SELECT count(*)::int AS kept FROM votes WHERE task_id = $1 AND verdict <> 'vetoed'`,
    [veto.taskId],
  );
  await q.query(
    `UPDATE tasks SET state = 'open', wanted = $2, open_slots = $3, agreed_digest = NULL, agreed_at = NULL,
            result = NULL, decided_by = 'votes', audit = NULL, referee = NULL, batch_id = NULL, error = $4
     WHERE task_id = $1 AND state = 'settling'`,
    [
      veto.taskId,
      kept + veto.fresh,
      veto.fresh,
      `reopened: ${veto.dropped.length} vote(s) vetoed (grant expired or revoked)`,
    ],
  );
}

/** Any failure sets a worker's earned trust back to nothing (verification.ts `afterFailure`). */
async function loseTrust(q: Queryable, workers: string[]): Promise<void> {
  if (workers.length === 0) return;
  const rows = await q.query<{ worker: string; audited: number; failures: number }>(
    'SELECT worker, audited, failures FROM worker_trust WHERE worker = ANY($1::text[])',
    [workers],
  );
  const known = new Map(rows.map((r) => [r.worker, { audited: r.audited, failures: r.failures }]));
  const next = workers.map((worker) => {
    const record: TrustRecord = known.get(worker) ?? { audited: 0, failures: 0 };
    return { worker, ...afterFailure(record) };
  });
  await q.query(
    `INSERT INTO worker_trust (worker, audited, failures, updated_at)
     SELECT x.worker, x.audited, x.failures, $2 FROM jsonb_to_recordset($1::jsonb) AS x(worker text, audited int, failures int)
     ON CONFLICT (worker) DO UPDATE SET audited = excluded.audited, failures = excluded.failures, updated_at = excluded.updated_at`,
    [JSON.stringify(next), Date.now()],
  );
}
