/**
 * Bonds, the coordinator's side (docs/TRUST.md, "Bonds"):
 * - `BondBook` answers the trust policy's question "is this worker bonded?" (./verification.ts
 *   `isTrusted`) from the contract's `bondOf`, cached so that the lease route never waits on the chain:
 *   a worker not read yet counts as unbonded until its bond has been read, moments later.
 * - `Slasher` sends the slash for every wrong vote of a bonded worker once the CPU has established
 *   the task's true digest: the digest a failed audit recomputed in full, or the digest of a task the
 *   referee decided (its bisection recomputed where the losing votes diverge). Never on a majority
 *   alone: a colluding majority must not be able to slash an honest minority. The referee key signs
 *   the verdict, the contract checks it against the worker's signed vote and moves the whole bond to
 *   the pool.
 */
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  type Hex,
  isAddressEqual,
  zeroAddress,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { bondOf, slash } from '../chain/bonds.ts';
import { type ChainPublicClient, connectKnownChain, type SigningConnection } from '../chain/client.ts';
import type { Db } from './db.ts';
import { type ChainSettings, refereeVerdictSigner } from './settler.ts';

/** The least bond a worker needs before it may run single replicas (wei): 0.01 ETH. */
export const DEFAULT_MIN_BOND = 10n ** 16n;
/**
 * The bond asked, in rewards per task: a lie caught with probability p loses B and gains at most one
 * reward r, so it loses money on average when B > r (1 − p) / p, 6.7 r at the p ≈ 0.13 of
 * docs/TRUST.md's arithmetic. 10 leaves room for a lower p.
 */
export const BOND_IN_REWARDS = 10n;

/** The bond the coordinator asks by default: BOND_IN_REWARDS rewards, and at least DEFAULT_MIN_BOND. */
export function defaultMinBond(rewardPerTask: bigint): bigint {
  const scaled = BOND_IN_REWARDS * rewardPerTask;
  return scaled > DEFAULT_MIN_BOND ? scaled : DEFAULT_MIN_BOND;
}
/** How long a read bond is believed (ms): a request to unbond takes effect within this. */
export const BOND_TTL_MS = 15_000;

export class BondBook {
  private readonly read = new Map<string, { bonded: bigint; at: number }>();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly client: Pick<ChainPublicClient, 'readContract'>,
    private readonly settlement: Address,
    readonly minBond: bigint = DEFAULT_MIN_BOND,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  /**
   * Which of `workers` hold at least `minBond` as of their last read. Never waits: workers read
   * longer than BOND_TTL_MS ago (or never) are read again in the background.
   */
  bondedAmong = async (workers: string[]): Promise<Set<string>> => {
    const now = Date.now();
    const out = new Set<string>();
    for (const w of workers) {
      const known = this.read.get(w);
      if (!known || now - known.at > BOND_TTL_MS) this.refresh(w);
      if (known && known.bonded >= this.minBond) out.add(w);
    }
    return out;
  };

  /** Reads the worker's bond now (and caches it). */
  async bondedNow(worker: string): Promise<bigint> {
    const { bonded } = await bondOf(this.client, this.settlement, worker as Address);
    this.read.set(worker, { bonded, at: Date.now() });
    return bonded;
  }

  /** Forgets a worker's bond (after a slash), so it counts as unbonded at once. */
  forget(worker: string): void {
    this.read.set(worker, { bonded: 0n, at: Date.now() });
  }

  private refresh(worker: string): void {
    if (this.inFlight.has(worker)) return;
    this.inFlight.add(worker);
    this.bondedNow(worker)
      .catch((err) => this.log(`bond of ${worker} not read: ${err instanceof Error ? err.message : err}`))
      .finally(() => this.inFlight.delete(worker));
  }
}

interface SlashCandidate {
  task_id: Hex;
  worker: Address;
  digest: Hex;
  session_key: Address;
  session_expiry: number;
  grant_sig: Hex;
  vote_sig: Hex;
  truth: Hex;
}

export interface SlashOutcome {
  taskId: Hex;
  worker: Address;
  state: 'slashed' | 'failed';
  amount?: bigint;
  error?: string;
}

export class Slasher {
  private readonly conn: SigningConnection;
  private readonly signVerdict: (taskId: Hex, digest: Hex) => Promise<Hex>;

  constructor(
    private readonly db: Db,
    private readonly chain: ChainSettings & { refereeKey: Hex },
    private readonly book?: BondBook,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.conn = connectKnownChain(chain.chainId, chain.rpcUrl, privateKeyToAccount(chain.coordinatorKey));
    this.signVerdict = refereeVerdictSigner(chain);
  }

  /**
   * One pass over wrong votes not looked at yet whose task's true digest is known. A vote for the
   * true digest, or of a worker with nothing bonded, is only marked looked at. Throws on RPC faults
   * (the vote stays unlooked-at and the next pass retries it).
   */
  async tick(limit = 32): Promise<SlashOutcome[]> {
    const rows = await this.db.query<SlashCandidate>(
      `SELECT v.task_id, v.worker, v.digest, v.session_key, v.session_expiry, v.grant_sig, v.vote_sig,
              CASE WHEN t.referee->>'by' = 'audit' THEN t.referee->>'right' ELSE t.agreed_digest END AS truth
       FROM votes v JOIN tasks t USING (task_id)
       WHERE v.verdict = 'wrong' AND NOT v.slash_checked
         AND (t.referee->>'by' = 'audit'
              OR (t.state IN ('agreed', 'settling', 'settled') AND t.decided_by = 'referee'))
       ORDER BY v.received_at LIMIT $1`,
      [limit],
    );
    const outcomes: SlashOutcome[] = [];
    for (const row of rows) {
      const outcome = await this.consider(row);
      if (outcome) outcomes.push(outcome);
    }
    return outcomes;
  }

  private async consider(row: SlashCandidate): Promise<SlashOutcome | undefined> {
    if (!row.truth || row.digest === row.truth) return this.checked(row);
    const { bonded, unbonding } = await bondOf(this.conn.publicClient, this.chain.settlement, row.worker);
    if (bonded + unbonding === 0n) return this.checked(row);
    const verdictSig = await this.signVerdict(row.task_id, row.truth);
    const own = isAddressEqual(row.session_key, row.worker);
    await this.db.query(
      `INSERT INTO slashes (task_id, worker, digest, true_digest, state, at) VALUES ($1, $2, $3, $4, 'sent', $5)
       ON CONFLICT (task_id, worker) DO NOTHING`,
      [row.task_id, row.worker, row.digest, row.truth, Date.now()],
    );
    let outcome: SlashOutcome;
    try {
      const { txHash, amount } = await slash(this.conn, this.chain.settlement, {
        taskId: row.task_id,
        digest: row.digest,
        worker: row.worker,
        voteSig: row.vote_sig,
        grant: own
          ? { sessionKey: zeroAddress, expiresAt: 0n, signature: '0x' }
          : { sessionKey: row.session_key, expiresAt: BigInt(row.session_expiry), signature: row.grant_sig },
        trueDigest: row.truth,
        verdictSig,
      });
      await this.db.query(
        `UPDATE slashes SET state = 'slashed', amount = $3, tx_hash = $4 WHERE task_id = $1 AND worker = $2`,
        [row.task_id, row.worker, amount.toString(), txHash],
      );
      this.book?.forget(row.worker);
      outcome = { taskId: row.task_id, worker: row.worker, state: 'slashed', amount };
      this.log(`slashed ${amount} wei of ${row.worker}'s bond for its wrong vote on ${row.task_id}`);
    } catch (err) {
      const reverted =
        err instanceof BaseError && err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (!reverted) throw err; // an RPC fault: the next pass retries
      const reason = reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
      const error = reason ?? (err as BaseError).shortMessage;
      // AlreadySlashed: our own earlier transaction went through before a crash lost its receipt.
      const state = reason === 'AlreadySlashed' ? 'slashed' : 'failed';
      await this.db.query(`UPDATE slashes SET state = $3, error = $4 WHERE task_id = $1 AND worker = $2`, [
        row.task_id,
        row.worker,
        state,
        error,
      ]);
      outcome = { taskId: row.task_id, worker: row.worker, state, error };
      this.log(`slash of ${row.worker} for ${row.task_id} refused by the contract: ${error}`);
    }
    await this.checked(row);
    return outcome;
  }

  private async checked(row: SlashCandidate): Promise<undefined> {
    await this.db.query(`UPDATE votes SET slash_checked = true WHERE task_id = $1 AND worker = $2`, [
      row.task_id,
      row.worker,
    ]);
    return undefined;
  }
}
