/**
 * Settles agreed tasks on chain in batches, idempotently, through crashes and RPC faults.
 *
 * Each batch goes through intent → sent → confirmed in the database:
 * 1. intent: the batch's task list is stored (tasks move to 'settling') before anything is sent;
 * 2. sent: the transaction is signed locally, its hash stored, and only then broadcast;
 * 3. confirmed: the receipt is in; tasks are 'settled' with the transaction hash.
 * After a crash or an RPC error the open batch is resumed: a stored hash is looked up; otherwise
 * every task is checked with `settled(taskId)` on chain first, so nothing is sent twice, and the
 * contract itself rejects an already-settled task, so nobody is paid twice in any case.
 */
import { BaseError, encodeFunctionData, type Hex, isAddressEqual, keccak256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  type ChainPublicClient,
  type ChainWalletClient,
  connectKnownChain,
  contractErrorOf,
  isSettled,
  OPERATOR_SEARCH,
  prepareSettle,
  readSettledEvents,
  type SettlementInput,
  settlementAbi,
} from '../chain/client.ts';
import { cambrianDomain, signRefereeVerdict } from '../protocol/eip712.ts';
import { type AnyTaskSpec, canonicalSpec, type TaskResult } from '../protocol/index.ts';
import type { Db } from './db.ts';
import { afterDroppedVotes, replicasAfterVeto } from './verification.ts';
import { applyVeto, type Veto } from './veto.ts';

export interface ChainSettings {
  rpcUrl: string;
  chainId: number;
  settlement: Hex;
  /** The key holding the contract's COORDINATOR_ROLE. */
  coordinatorKey: Hex;
  /** The key holding REFEREE_ROLE: signs the verdict of tasks the referee decided (decided_by = 'referee'). */
  refereeKey?: Hex;
}

/**
 * The referee's signature of `RefereeVerdict(taskId, digest)` on this chain: what the settler attaches to
 * a task the referee decided and what a slash proves a vote wrong with (./bonds.ts).
 */
export function refereeVerdictSigner(
  chain: Pick<ChainSettings, 'chainId' | 'settlement'> & { refereeKey: Hex },
): (taskId: Hex, digest: Hex) => Promise<Hex> {
  const referee = privateKeyToAccount(chain.refereeKey);
  const domain = cambrianDomain(chain.chainId, chain.settlement);
  return (taskId, digest) => signRefereeVerdict(referee, domain, { taskId, digest });
}

export interface SettlerOptions {
  batchSize?: number;
  log?: (msg: string) => void;
}

interface VoteRow {
  task_id: Hex;
  received_at: number;
  worker: Hex;
  digest: Hex;
  session_key: Hex;
  session_expiry: number;
  grant_sig: Hex;
  vote_sig: Hex;
  verdict: string;
}

interface BatchRow {
  batch_id: number;
  state: string;
  task_ids: Hex[];
  tx_hash: Hex | null;
  raw_tx: Hex | null;
  attempts: number;
  updated_at: number;
}

/** After this long without a receipt a sent transaction is presumed dropped and re-checked task by task. */
const DROPPED_AFTER_MS = 60_000;
/**
 * A vote whose grant expires within this margin of the pending block is left out: the contract would skip
 * it, and a winner counted on would leave the task without its majority. Well below MIN_GRANT_LIFETIME_S.
 */
const EXPIRY_MARGIN_S = 60n;
/** Rejections that a vote skipped on chain causes (a revocation that landed after the votes were checked). */
const VOTE_COUNT_ERRORS = new Set(['QuorumNotReached', 'NoMajority', 'NoHonestVote']);
/**
 * Rejections of a whole batch by its search: it was never opened on chain, or its sponsor closed it and
 * the grace is over. Its tasks can never be paid, so they fail (and do not block other searches' batches).
 */
const SEARCH_ERRORS = new Set(['UnknownSearch', 'SearchNotOpen']);

interface TaskRow {
  task_id: Hex;
  seq: number;
  search_id: Hex | null;
  spec: AnyTaskSpec;
  result: TaskResult;
  agreed_digest: Hex;
  decided_by: 'votes' | 'referee';
}

export class Settler {
  readonly publicClient: ChainPublicClient;
  private readonly wallet: ChainWalletClient;
  private readonly batchSize: number;
  private readonly log: (msg: string) => void;
  private signVerdict?: (taskId: Hex, digest: Hex) => Promise<Hex>;
  /** Tasks already sent back once after a vote-count rejection (a second one fails them). */
  private readonly rechecked = new Set<Hex>();

  constructor(
    private readonly db: Db,
    private readonly chain: ChainSettings,
    opts: SettlerOptions = {},
  ) {
    const conn = connectKnownChain(chain.chainId, chain.rpcUrl, privateKeyToAccount(chain.coordinatorKey));
    this.publicClient = conn.publicClient;
    this.wallet = conn.wallet;
    this.batchSize = opts.batchSize ?? 16;
    this.log = opts.log ?? (() => {});
  }

  /** One pass: finish open batches, then settle what is agreed. Throws on RPC faults (retry later). */
  async tick(renewLock: () => Promise<boolean> = async () => true): Promise<number> {
    let settled = 0;
    for (const batch of await this.openBatches()) {
      if (!(await renewLock())) return settled;
      settled += await this.resume(batch);
    }
    for (;;) {
      if (!(await renewLock())) return settled;
      const batch = await this.createBatch();
      if (!batch) break;
      settled += await this.resume(batch);
    }
    return settled;
  }

  private openBatches(): Promise<BatchRow[]> {
    return this.db.query<BatchRow>(
      `SELECT * FROM batches WHERE state IN ('intent', 'sent') ORDER BY batch_id`,
    );
  }

  /**
   * Step 1: record the intent (which tasks go in this batch) before anything touches the chain. A batch is
   * one search's tasks (the contract pays a batch from one pool): the search of the oldest agreed task.
   */
  private createBatch(): Promise<BatchRow | undefined> {
    return this.db.tx(async (q) => {
      const tasks = await q.query<{ task_id: Hex }>(
        `WITH first AS (SELECT coalesce(search_id, '') AS key FROM tasks WHERE state = 'agreed'
                        ORDER BY agreed_at, seq LIMIT 1)
         SELECT t.task_id FROM tasks t, first WHERE t.state = 'agreed' AND coalesce(t.search_id, '') = first.key
         ORDER BY t.agreed_at, t.seq LIMIT $1 FOR UPDATE OF t SKIP LOCKED`,
        [this.batchSize],
      );
      if (tasks.length === 0) return undefined;
      const ids = tasks.map((t) => t.task_id);
      const now = Date.now();
      const [batch] = await q.query<BatchRow>(
        `INSERT INTO batches (state, task_ids, created_at, updated_at) VALUES ('intent', $1::jsonb, $2, $2) RETURNING *`,
        [JSON.stringify(ids), now],
      );
      await q.query(`UPDATE tasks SET state = 'settling', batch_id = $1 WHERE task_id = ANY($2::text[])`, [
        batch.batch_id,
        ids,
      ]);
      return batch;
    });
  }

  /** Drives one batch to confirmed (or back to 'agreed' for the tasks that could not go). */
  private async resume(batch: BatchRow): Promise<number> {
    if (batch.tx_hash) {
      const receipt = await this.publicClient.getTransactionReceipt({ hash: batch.tx_hash }).catch((err) => {
        if (err instanceof BaseError && err.name === 'TransactionReceiptNotFoundError') return undefined;
        throw err;
      });
      if (receipt?.status === 'success') return this.confirm(batch, batch.task_ids, batch.tx_hash);
      if (!receipt && (await this.knownToNode(batch.tx_hash))) {
        if (Date.now() - batch.updated_at < DROPPED_AFTER_MS) return 0; // still pending
      } else if (!receipt && batch.raw_tx) {
        // Stored but never broadcast (a crash in between): send the very same transaction.
        const sent = await this.publicClient
          .sendRawTransaction({ serializedTransaction: batch.raw_tx })
          .catch(() => null);
        if (sent) {
          const r = await this.publicClient.waitForTransactionReceipt({ hash: sent, timeout: 60_000 });
          if (r.status === 'success') return this.confirm(batch, batch.task_ids, sent);
        }
      }
      this.log(
        `settlement batch ${batch.batch_id}: tx ${batch.tx_hash} ${receipt ? 'reverted' : 'dropped'}; rechecking`,
      );
    }
    // No hash (crashed before sending) or a failed/dropped send: ask the chain task by task.
    const pending: Hex[] = [];
    let settled = 0;
    const seqs = await this.seqsOf(batch.task_ids);
    for (const taskId of batch.task_ids) {
      const seq = seqs.get(taskId)!;
      if (await isSettled(this.publicClient, this.chain.settlement, seq))
        settled += await this.confirm(batch, [taskId], await this.settlingTx(seq));
      else pending.push(taskId);
    }
    if (pending.length === 0) {
      await this.finishBatch(batch.batch_id, 'confirmed');
      return settled;
    }
    return settled + (await this.send(batch, pending));
  }

  private async knownToNode(hash: Hex): Promise<boolean> {
    try {
      await this.publicClient.getTransaction({ hash });
      return true;
    } catch (err) {
      if (err instanceof BaseError && err.name === 'TransactionNotFoundError') return false;
      throw err;
    }
  }

  private async seqsOf(taskIds: Hex[]): Promise<Map<Hex, number>> {
    const rows = await this.db.query<{ task_id: Hex; seq: number }>(
      'SELECT task_id, seq FROM tasks WHERE task_id = ANY($1::text[])',
      [taskIds],
    );
    return new Map(rows.map((r) => [r.task_id, r.seq]));
  }

  /** The transaction that settled a task (read from the chain through the shared client). */
  private async settlingTx(seq: number): Promise<Hex | null> {
    const [event] = await readSettledEvents(this.publicClient, this.chain.settlement, { seq: BigInt(seq) });
    return event?.txHash ?? null;
  }

  /** Steps 2–3: simulate against the pending block, sign, store the hash, broadcast, wait for the receipt. */
  private async send(batch: BatchRow, taskIds: Hex[]): Promise<number> {
    const { settlements, skipped, vetoes, searchId } = await this.buildSettlements(taskIds);
    for (const [taskId, reason] of skipped) await this.fail(taskId, reason);
    for (const veto of vetoes) await this.veto(veto);
    const account = this.wallet.account;
    let prepared: Awaited<ReturnType<typeof prepareSettle>>;
    try {
      prepared = await prepareSettle(
        { chain: this.wallet.chain, rpcUrl: this.chain.rpcUrl, publicClient: this.publicClient },
        this.chain.settlement,
        account,
        settlements,
        { searchId },
      );
    } catch (err) {
      const refusal = contractErrorOf(err);
      if (refusal && SEARCH_ERRORS.has(refusal.errorName)) {
        for (const s of settlements) await this.fail(s.taskId, `its search cannot pay: ${refusal.errorName}`);
        await this.finishBatch(batch.batch_id, 'failed', refusal.errorName);
        return 0;
      }
      // Not about one task (an RPC fault, a missing role): the whole batch waits for the next tick.
      await this.finishBatch(
        batch.batch_id,
        'failed',
        err instanceof Error ? err.message.split('\n')[0] : 'error',
      );
      throw err;
    }
    for (const r of prepared.rejected) {
      if (VOTE_COUNT_ERRORS.has(r.errorName) && !this.rechecked.has(r.taskId)) {
        // A vote was revoked after usableVotes looked: the next pass drops it and settles or reopens.
        this.rechecked.add(r.taskId);
        await this.release([r.taskId]);
      } else await this.fail(r.taskId, `settle rejected it: ${r.errorName}`);
    }
    if (prepared.deferred.length > 0) {
      this.log(`${prepared.deferred.length} task(s) wait for the next epoch (payout cap reached)`);
      await this.release(prepared.deferred.map((t) => t.taskId));
    }
    const ids = prepared.tasks.map((s) => s.taskId);
    if (ids.length === 0) {
      await this.finishBatch(batch.batch_id, 'failed', 'nothing settleable');
      return 0;
    }
    const request = await this.wallet.prepareTransactionRequest({
      account,
      chain: this.wallet.chain,
      to: this.chain.settlement,
      data: encodeFunctionData({ abi: settlementAbi, functionName: 'settle', args: prepared.args }),
      // The estimate was made against the pending block; a margin covers storage the chain warms meanwhile.
      gas: prepared.gas ? (prepared.gas * 12n) / 10n : undefined,
    });
    const raw = await this.wallet.signTransaction({ ...request, account, chain: this.wallet.chain } as never);
    const hash = keccak256(raw);
    await this.db.query(
      `UPDATE batches SET state = 'sent', tx_hash = $2, raw_tx = $5, attempts = attempts + 1, updated_at = $3,
              task_ids = $4::jsonb WHERE batch_id = $1`,
      [batch.batch_id, hash, Date.now(), JSON.stringify(ids), raw],
    );
    await this.publicClient.sendRawTransaction({ serializedTransaction: raw });
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
    if (receipt.status !== 'success') {
      this.log(`settlement batch ${batch.batch_id}: ${hash} reverted`);
      return this.resume({ ...batch, task_ids: ids, tx_hash: null, raw_tx: null });
    }
    this.log(`settled ${ids.length} task(s) in ${hash} (gas ${receipt.gasUsed})`);
    return this.confirm(batch, ids, hash);
  }

  /** Tasks that did not go in this batch go back in line. */
  private async release(taskIds: Hex[]): Promise<void> {
    await this.db.query(
      `UPDATE tasks SET state = 'agreed', batch_id = NULL WHERE task_id = ANY($1::text[]) AND state = 'settling'`,
      [taskIds],
    );
  }

  /**
   * The settlements of these tasks: the agreed metrics, the votes that will count on chain and, for a task
   * the referee decided, its signed verdict (then every other voter is struck, whatever the count). A vote
   * whose grant expires before the pending block (with a margin) or whose key was revoked is left out (the
   * contract would skip it), so the winners counted on are the ones that count.
   */
  private async buildSettlements(taskIds: Hex[]) {
    const tasks = await this.db.query<TaskRow>(
      `SELECT task_id, seq, search_id, spec, result, agreed_digest, decided_by FROM tasks
       WHERE task_id = ANY($1::text[]) ORDER BY seq`,
      [taskIds],
    );
    const votes = await this.db.query<VoteRow>(
      `SELECT * FROM votes WHERE task_id = ANY($1::text[]) AND verdict IN ('majority', 'dissent', 'wrong')
       ORDER BY received_at, worker`,
      [taskIds],
    );
    const usable = await this.usableVotes(votes);
    const skipped: [Hex, string][] = [];
    const vetoes: Veto[] = [];
    const settlements: SettlementInput[] = [];
    for (const t of tasks) {
      const mine = usable.filter((v) => v.task_id === t.task_id);
      const winners = mine.filter((v) => v.digest === t.agreed_digest);
      let refereed = t.decided_by === 'referee';
      const veto = await this.vetoOf(t, votes, mine, winners.length);
      if (veto) {
        vetoes.push(veto);
        if (veto.after === 'reopen') continue;
        if (veto.after === 'verdict') refereed = true;
      }
      if (winners.length === 0) {
        skipped.push([t.task_id, 'no usable vote for the agreed digest']);
        continue;
      }
      if (refereed && !this.chain.refereeKey) {
        // A configuration fault, not the task's: it fails visibly instead of blocking every later batch.
        skipped.push([t.task_id, 'decided by the referee, but no referee key is configured']);
        continue;
      }
      // Dissenting votes go on chain too (they earn strikes): all of them under a verdict, else as many
      // as keep the winners a strict majority.
      const others = mine.filter((v) => v.digest !== t.agreed_digest);
      const losers = refereed ? others : others.slice(0, Math.max(0, winners.length - 1));
      settlements.push({
        seq: BigInt(t.seq),
        taskId: t.task_id,
        valCorrect: t.result.valCorrect,
        valCount: t.result.valCount,
        valLoss: BigInt(t.result.valLoss),
        weightsHash: t.result.weightsHash as Hex,
        traceRoot: t.result.traceRoot as Hex,
        spec: canonicalSpec(t.spec),
        verdictSig: refereed ? await this.verdict(t) : undefined,
        votes: [...winners, ...losers].map((v) => ({
          worker: v.worker,
          digest: v.digest,
          sessionKey: v.session_key,
          sessionExpiry: BigInt(v.session_expiry),
          grantSig: v.grant_sig,
          voteSig: v.vote_sig,
        })),
      });
    }
    const searches = new Set(tasks.map((t) => t.search_id));
    if (searches.size > 1) throw new Error(`a settlement batch holds tasks of ${searches.size} searches`);
    const searchId = (tasks[0]?.search_id ?? OPERATOR_SEARCH) as Hex;
    return { settlements, skipped, vetoes, searchId };
  }

  /** What dropping this task's unusable votes does to it (undefined: none was dropped). */
  private async vetoOf(
    t: TaskRow,
    all: VoteRow[],
    usable: VoteRow[],
    winners: number,
  ): Promise<Veto | undefined> {
    const dropped = all.filter((v) => v.task_id === t.task_id && !usable.includes(v)).map((v) => v.worker);
    if (dropped.length === 0) return undefined;
    const quorum = await this.minQuorum();
    const after = afterDroppedVotes(
      winners,
      usable.length - winners,
      quorum,
      t.decided_by === 'referee',
      this.chain.refereeKey !== undefined,
    );
    return { taskId: t.task_id, dropped, after, fresh: replicasAfterVeto(winners, quorum) };
  }

  private async minQuorum(): Promise<number> {
    const q = await this.publicClient.readContract({
      address: this.chain.settlement,
      abi: settlementAbi,
      functionName: 'minQuorum',
    });
    return Number(q);
  }

  /** Records a veto (./veto.ts); a reopened task leaves this batch and goes back to leasing. */
  private async veto(veto: Veto): Promise<void> {
    await this.db.tx((q) => applyVeto(q, veto));
    this.log(
      `task ${veto.taskId}: ${veto.dropped.length} vote(s) vetoed; ` +
        {
          settle: 'enough valid votes remain',
          verdict: "settles under the referee's verdict",
          reopen: 'reopened',
        }[veto.after],
    );
  }

  private async verdict(t: TaskRow): Promise<Hex> {
    const { refereeKey } = this.chain;
    if (!refereeKey)
      throw new Error(`task ${t.task_id} was decided by the referee but no referee key is set`);
    this.signVerdict ??= refereeVerdictSigner({ ...this.chain, refereeKey });
    return this.signVerdict(t.task_id, t.agreed_digest);
  }

  /** Votes the contract will count at the pending block: own-key votes, and grants neither expiring nor revoked. */
  private async usableVotes(votes: VoteRow[]): Promise<VoteRow[]> {
    const pending = await this.publicClient.getBlock({ blockTag: 'pending' });
    const deadline = pending.timestamp + EXPIRY_MARGIN_S;
    const delegated = votes.filter((v) => !isAddressEqual(v.worker, v.session_key));
    const revoked = new Set<string>();
    await Promise.all(
      [...new Set(delegated.map((v) => `${v.worker}:${v.session_key}`))].map(async (pair) => {
        const [worker, key] = pair.split(':') as [Hex, Hex];
        const gone = await this.publicClient.readContract({
          address: this.chain.settlement,
          abi: settlementAbi,
          functionName: 'sessionRevoked',
          args: [worker, key],
        });
        if (gone) revoked.add(pair);
      }),
    );
    return votes.filter((v) => {
      if (isAddressEqual(v.worker, v.session_key)) return true;
      const ok = BigInt(v.session_expiry) > deadline && !revoked.has(`${v.worker}:${v.session_key}`);
      if (!ok) this.log(`vote of ${v.worker} on ${v.task_id} left out: its grant expired or was revoked`);
      return ok;
    });
  }

  private async confirm(batch: BatchRow, taskIds: Hex[], txHash: Hex | null): Promise<number> {
    const now = Date.now();
    return this.db.tx(async (q) => {
      const rows = await q.query(
        `UPDATE tasks SET state = 'settled', tx_hash = $2, settled_at = $3, error = NULL
         WHERE task_id = ANY($1::text[]) AND state <> 'settled' RETURNING 1`,
        [taskIds, txHash, now],
      );
      const [{ open }] = await q.query<{ open: number }>(
        `SELECT count(*)::int AS open FROM tasks WHERE batch_id = $1 AND state = 'settling'`,
        [batch.batch_id],
      );
      if (open === 0) {
        await q.query(`UPDATE batches SET state = 'confirmed', updated_at = $2 WHERE batch_id = $1`, [
          batch.batch_id,
          now,
        ]);
      }
      return rows.length;
    });
  }

  private async fail(taskId: Hex, reason: string): Promise<void> {
    this.log(`task ${taskId} cannot settle: ${reason}`);
    await this.db.query(
      `UPDATE tasks SET state = 'failed', error = $2 WHERE task_id = $1 AND state <> 'settled'`,
      [taskId, reason],
    );
  }

  private async finishBatch(batchId: number, state: 'confirmed' | 'failed', error?: string): Promise<void> {
    await this.db.tx(async (q) => {
      await q.query('UPDATE batches SET state = $2, error = $3, updated_at = $4 WHERE batch_id = $1', [
        batchId,
        state,
        error ?? null,
        Date.now(),
      ]);
      // Tasks of a failed batch that did nothing wrong go back in line for the next batch.
      await q.query(
        `UPDATE tasks SET state = 'agreed', batch_id = NULL WHERE batch_id = $1 AND state = 'settling'`,
        [batchId],
      );
    });
  }
}
