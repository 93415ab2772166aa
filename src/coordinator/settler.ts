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
import {
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  encodeFunctionData,
  type Hex,
  http,
  keccak256,
  type PublicClient,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { settlementAbi } from '../chain/generated/settlement.ts';
import type { TaskResult } from '../protocol/index.ts';
import type { Db } from './db.ts';

export interface ChainSettings {
  rpcUrl: string;
  chainId: number;
  settlement: Hex;
  /** The key holding the contract's COORDINATOR_ROLE. */
  coordinatorKey: Hex;
}

export interface SettlerOptions {
  batchSize?: number;
  log?: (msg: string) => void;
}

interface VoteRow {
  task_id: Hex;
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

export function chainOf(settings: Pick<ChainSettings, 'chainId' | 'rpcUrl'>): Chain {
  return {
    id: settings.chainId,
    name: `chain ${settings.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [settings.rpcUrl] } },
  };
}

export class Settler {
  readonly publicClient: PublicClient;
  private readonly wallet: WalletClient;
  private readonly batchSize: number;
  private readonly log: (msg: string) => void;

  constructor(
    private readonly db: Db,
    private readonly chain: ChainSettings,
    opts: SettlerOptions = {},
  ) {
    const transport = http(chain.rpcUrl, { retryCount: 0, timeout: 10_000 });
    const viemChain = chainOf(chain);
    this.publicClient = createPublicClient({ chain: viemChain, transport });
    this.wallet = createWalletClient({
      chain: viemChain,
      transport,
      account: privateKeyToAccount(chain.coordinatorKey),
    });
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

  /** Step 1: record the intent (which tasks go in this batch) before anything touches the chain. */
  private createBatch(): Promise<BatchRow | undefined> {
    return this.db.tx(async (q) => {
      const tasks = await q.query<{ task_id: Hex }>(
        `SELECT task_id FROM tasks WHERE state = 'agreed' ORDER BY agreed_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
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
    for (const taskId of batch.task_ids) {
      if (await this.isSettled(taskId))
        settled += await this.confirm(batch, [taskId], await this.settlingTx(taskId));
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

  private isSettled(taskId: Hex): Promise<boolean> {
    return this.publicClient.readContract({
      address: this.chain.settlement,
      abi: settlementAbi,
      functionName: 'settled',
      args: [taskId],
    });
  }

  /** The transaction that settled a task, from its TaskSettled event (taskId is indexed). */
  private async settlingTx(taskId: Hex): Promise<Hex | null> {
    const logs = await this.publicClient.getContractEvents({
      address: this.chain.settlement,
      abi: settlementAbi,
      eventName: 'TaskSettled',
      args: { taskId },
      fromBlock: 0n,
    });
    return logs[0]?.transactionHash ?? null;
  }

  /** Steps 2–3: simulate, sign, store the hash, broadcast, wait for the receipt. */
  private async send(batch: BatchRow, taskIds: Hex[]): Promise<number> {
    const { settlements, skipped } = await this.buildSettlements(taskIds);
    for (const [taskId, reason] of skipped) await this.fail(taskId, reason);
    const ids = settlements.map((s) => s.taskId);
    if (ids.length === 0) {
      await this.finishBatch(batch.batch_id, 'failed', 'nothing settleable');
      return 0;
    }
    const account = this.wallet.account!;
    try {
      await this.publicClient.simulateContract({
        address: this.chain.settlement,
        abi: settlementAbi,
        functionName: 'settle',
        args: [settlements],
        account,
      });
    } catch (err) {
      const revert =
        err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : null;
      if (!(revert instanceof ContractFunctionRevertedError)) throw err; // RPC fault: retry later
      const index = Number((revert.data?.args as unknown[] | undefined)?.[0] ?? -1);
      const name = revert.data?.errorName ?? revert.shortMessage;
      const culprit = ids[index];
      if (culprit) await this.fail(culprit, `settle reverted: ${name}`);
      else for (const id of ids) await this.fail(id, `settle reverted: ${name}`);
      await this.finishBatch(batch.batch_id, 'failed', name);
      return 0;
    }
    const request = await this.wallet.prepareTransactionRequest({
      account,
      chain: this.wallet.chain,
      to: this.chain.settlement,
      data: encodeFunctionData({ abi: settlementAbi, functionName: 'settle', args: [settlements] }),
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

  private async buildSettlements(taskIds: Hex[]) {
    const tasks = await this.db.query<{ task_id: Hex; result: TaskResult; agreed_digest: Hex }>(
      'SELECT task_id, result, agreed_digest FROM tasks WHERE task_id = ANY($1::text[])',
      [taskIds],
    );
    const votes = await this.db.query<VoteRow>(
      `SELECT * FROM votes WHERE task_id = ANY($1::text[]) AND verdict IN ('majority', 'dissent', 'wrong')
       ORDER BY received_at`,
      [taskIds],
    );
    const skipped: [Hex, string][] = [];
    const settlements = [];
    for (const t of tasks) {
      const mine = votes.filter((v) => v.task_id === t.task_id);
      const winners = mine.filter((v) => v.digest === t.agreed_digest);
      // Dissenting votes go on chain too (they earn strikes), as many as keep the winners a majority.
      const losers = mine
        .filter((v) => v.digest !== t.agreed_digest)
        .slice(0, Math.max(0, winners.length - 1));
      if (winners.length === 0) {
        skipped.push([t.task_id, 'no votes for the agreed digest']);
        continue;
      }
      settlements.push({
        taskId: t.task_id,
        valCorrect: t.result.valCorrect,
        valCount: t.result.valCount,
        valLoss: BigInt(t.result.valLoss),
        weightsHash: t.result.weightsHash as Hex,
        traceRoot: t.result.traceRoot as Hex,
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
    return { settlements, skipped };
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
