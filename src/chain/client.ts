/**
 * Typed helpers around the Settlement contract (v2) for the coordinator, the CLI and the web app: the one
 * viem chain definition, deployment, settle (encode, simulate against the pending block, drop what the
 * contract names), claims, reads, and the settled tasks rebuilt from the chain alone.
 * Browser-safe: viem and Web Streams only, no node: imports.
 */
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  decodeFunctionData,
  defineChain,
  getAddress,
  type Hash,
  type Hex,
  http,
  type PublicClient,
  parseEventLogs,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem';
import type { SignedVote } from '../protocol/eip712.ts';
import type { ResultMetrics } from '../protocol/result.ts';
import { settlementAbi, settlementBytecode } from './generated/settlement.ts';
import {
  type CachedGrantOf,
  decodeSpecs,
  decodeTasks,
  encodeSettleArgs,
  type SettleArgs,
  type SettlementInput,
} from './packing.ts';

export { OPERATOR_SEARCH } from './packing.ts';
export type { SettleArgs, SettlementInput };
export { settlementAbi, settlementBytecode };

export type ChainPublicClient = PublicClient<Transport, Chain>;
export type ChainWalletClient = WalletClient<Transport, Chain, Account>;

export interface ChainConnection {
  chain: Chain;
  rpcUrl: string;
  publicClient: ChainPublicClient;
}

export interface SigningConnection extends ChainConnection {
  wallet: ChainWalletClient;
}

/** The one viem chain definition for an RPC endpoint (app, coordinator and CLI all use it). */
export function chainDefinition(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/** Local nodes mine instantly; poll fast so receipts come back in milliseconds, not seconds. */
export function pollingIntervalFor(rpcUrl: string): number {
  return /127\.0\.0\.1|localhost/.test(rpcUrl) ? 50 : 1_000;
}

/** Clients for a chain whose id is known (no round trip). */
export function connectKnownChain(chainId: number, rpcUrl: string): ChainConnection;
export function connectKnownChain(chainId: number, rpcUrl: string, account: Account): SigningConnection;
export function connectKnownChain(
  chainId: number,
  rpcUrl: string,
  account?: Account,
): ChainConnection | SigningConnection {
  const chain = chainDefinition(chainId, rpcUrl);
  const pollingInterval = pollingIntervalFor(rpcUrl);
  const transport = http(rpcUrl, { retryCount: 0, timeout: 10_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval });
  if (!account) return { chain, rpcUrl, publicClient };
  const wallet = createWalletClient({ chain, transport, account, pollingInterval });
  return { chain, rpcUrl, publicClient, wallet };
}

/** Clients for any RPC endpoint, with the chain id read from the node. */
export async function connectChain(rpcUrl: string): Promise<ChainConnection>;
export async function connectChain(rpcUrl: string, account: Account): Promise<SigningConnection>;
export async function connectChain(
  rpcUrl: string,
  account?: Account,
): Promise<ChainConnection | SigningConnection> {
  const id = await createPublicClient({ transport: http(rpcUrl) }).getChainId();
  return account ? connectKnownChain(id, rpcUrl, account) : connectKnownChain(id, rpcUrl);
}

// ------------------------------------------------------------------------- deployment

/** One day: rate changes apply from the next epoch; credits are claimable two epochs after they were made. */
export const DEFAULT_EPOCH_SECONDS = 86_400;
/**
 * Two hours: a search closed by its sponsor keeps settling this long, so a task leased just before (a
 * lease lasts at most 30 minutes, then its replicas and audits) is still paid.
 */
export const DEFAULT_SEARCH_GRACE_SECONDS = 7_200;

export interface DeployOptions {
  /** DEFAULT_ADMIN_ROLE (terms, cap, roles, voids; a multisig or timelock in production). */
  admin: Address;
  /** Holder of COORDINATOR_ROLE (may call settle). Must differ from the admin. */
  coordinator: Address;
  /** Holder of REFEREE_ROLE (signs verdicts), if any. */
  referee?: Address;
  rewardPerTask: bigint;
  minQuorum: number;
  /** Most the coordinator may credit per epoch. Default: 1,000 tasks' rewards. */
  epochCap?: bigint;
  epochSeconds?: number;
  /** How long a closed search still settles before its sponsor may withdraw. Default DEFAULT_SEARCH_GRACE_SECONDS. */
  searchGraceSeconds?: number;
  /** Wei to put in the reward pool right after deployment. */
  fund?: bigint;
}

export interface Deployment {
  address: Address;
  deployTx: Hash;
  blockNumber: bigint;
  admin: Address;
  coordinator: Address;
  referee?: Address;
}

export async function confirmed(conn: ChainConnection, hash: Hash): Promise<TransactionReceipt> {
  const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
  return receipt;
}

/** Deploys, configures (constructor arguments) and optionally funds a Settlement contract. */
export async function deploySettlement(conn: SigningConnection, options: DeployOptions): Promise<Deployment> {
  if (getAddress(options.admin) === getAddress(options.coordinator)) {
    throw new Error('the admin must not be the coordinator: a stolen coordinator key would own the contract');
  }
  const deployTx = await conn.wallet.deployContract({
    abi: settlementAbi,
    bytecode: settlementBytecode,
    args: [
      options.admin,
      options.coordinator,
      options.referee ?? '0x0000000000000000000000000000000000000000',
      options.rewardPerTask,
      BigInt(options.minQuorum),
      options.epochCap ?? options.rewardPerTask * 1_000n,
      BigInt(options.epochSeconds ?? DEFAULT_EPOCH_SECONDS),
      BigInt(options.searchGraceSeconds ?? DEFAULT_SEARCH_GRACE_SECONDS),
    ],
  });
  const receipt = await confirmed(conn, deployTx);
  if (!receipt.contractAddress) throw new Error(`deployment ${deployTx} created no contract`);
  const address = getAddress(receipt.contractAddress);
  if (options.fund && options.fund > 0n) await fund(conn, address, options.fund);
  const { admin, coordinator, referee } = options;
  return { address, deployTx, blockNumber: receipt.blockNumber, admin, coordinator, referee };
}

// ------------------------------------------------------------------------- writes

export async function fund(conn: SigningConnection, settlement: Address, amount: bigint): Promise<Hash> {
  const hash = await conn.wallet.writeContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'fund',
    value: amount,
  });
  await confirmed(conn, hash);
  return hash;
}

export function settlementInput(
  seq: bigint | number,
  metrics: ResultMetrics,
  votes: readonly SignedVote[],
  extra: Pick<SettlementInput, 'verdictSig' | 'spec'> = {},
): SettlementInput {
  return { ...metrics, seq: BigInt(seq), votes, ...extra };
}

/** A custom error from the contract, decoded. */
export interface ContractError {
  errorName: string;
  args: readonly unknown[];
}

/** Decodes a Settlement custom error out of any viem error, or undefined if it is not a contract revert. */
export function contractErrorOf(err: unknown): ContractError | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName) {
    return { errorName: revert.data.errorName, args: revert.data.args ?? [] };
  }
  return undefined;
}

export interface RejectedSettlement extends ContractError {
  taskId: Hex;
  seq: bigint;
}

/** `settle` rejected one task of the batch (and so the whole batch: it is all or nothing). */
export class SettlementRejectedError extends Error {
  constructor(
    readonly index: number,
    readonly rejection: RejectedSettlement,
  ) {
    super(`settlement ${index} (task ${rejection.taskId}) rejected: ${rejection.errorName}`);
    this.name = 'SettlementRejectedError';
  }
}

export interface SettleOptions {
  /**
   * Drop each task the contract rejects and retry with the rest (the default). With false, the first
   * rejection throws SettlementRejectedError and nothing is sent.
   */
  skipRejected?: boolean;
  /** The search whose pool pays the batch (every task of it must be that search's); default the operator's. */
  searchId?: Hex;
}

/** What passed simulation, ready to send, and what did not go. */
export interface PreparedSettle {
  args: SettleArgs;
  tasks: SettlementInput[];
  rejected: RejectedSettlement[];
  /** Tasks past the epoch's payout cap: fine, they wait for the next epoch. */
  deferred: SettlementInput[];
  gas?: bigint;
}

/** Reads the chain's cached grant of every worker of the batch, so their grants are not sent again. */
export async function cachedGrants(
  client: Reader,
  settlement: Address,
  batch: readonly SettlementInput[],
): Promise<CachedGrantOf> {
  const workers = [...new Set(batch.flatMap((t) => t.votes.map((v) => getAddress(v.worker))))];
  const grants = await Promise.all(workers.map((w) => grantOf(client, settlement, w)));
  const byWorker = new Map(workers.map((w, i) => [w, grants[i]]));
  return (worker) => byWorker.get(getAddress(worker));
}

/**
 * Encodes and simulates a batch against the pending block (whose timestamp is the next block's, so a node
 * that mines only on transactions does not judge grant expiry by a stale block). A task the contract
 * rejects is named by the `index` its custom error carries and dropped (or thrown, see SettleOptions);
 * PayoutCapReached defers it and every later task to the next epoch. Repeats until the rest passes.
 */
export async function prepareSettle(
  conn: ChainConnection,
  settlement: Address,
  account: Account | Address,
  batch: readonly SettlementInput[],
  options: SettleOptions = {},
): Promise<PreparedSettle> {
  const skip = options.skipRejected ?? true;
  let pending = [...batch];
  const rejected: RejectedSettlement[] = [];
  let deferred: SettlementInput[] = [];
  const cached = await cachedGrants(conn.publicClient, settlement, batch);
  for (;;) {
    const args = await encodeSettleArgs(pending, cached, options.searchId);
    if (pending.length === 0) return { args, tasks: pending, rejected, deferred };
    try {
      const gas = await conn.publicClient.estimateContractGas({
        address: settlement,
        abi: settlementAbi,
        functionName: 'settle',
        args,
        account,
        blockTag: 'pending',
      });
      return { args, tasks: pending, rejected, deferred, gas };
    } catch (err) {
      const decoded = contractErrorOf(err);
      const index = decoded && typeof decoded.args[0] === 'bigint' ? Number(decoded.args[0]) : -1;
      if (!decoded || index < 0 || index >= pending.length) throw err;
      if (decoded.errorName === 'PayoutCapReached') {
        deferred = [...pending.slice(index), ...deferred];
        pending = pending.slice(0, index);
        continue;
      }
      const rejection = { ...decoded, taskId: pending[index].taskId, seq: pending[index].seq };
      if (!skip) throw new SettlementRejectedError(index, rejection);
      rejected.push(rejection);
      pending = pending.filter((_, i) => i !== index);
    }
  }
}

export interface SettleReceipt {
  /** Undefined when nothing was left to send. */
  txHash?: Hash;
  blockNumber?: bigint;
  gasUsed: bigint;
  /** Calldata bytes of the transaction's input. */
  calldataBytes?: number;
  settled: Hex[];
  rejected: RejectedSettlement[];
  deferred: Hex[];
}

/** Settles a batch: prepareSettle, then send what passed and wait for its receipt. */
export async function settleBatch(
  conn: SigningConnection,
  settlement: Address,
  batch: readonly SettlementInput[],
  options: SettleOptions = {},
): Promise<SettleReceipt> {
  const prepared = await prepareSettle(conn, settlement, conn.wallet.account, batch, options);
  const deferred = prepared.deferred.map((t) => t.taskId);
  if (prepared.tasks.length === 0) return { gasUsed: 0n, settled: [], rejected: prepared.rejected, deferred };
  const txHash = await conn.wallet.writeContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'settle',
    args: prepared.args,
    gas: prepared.gas,
  });
  const receipt = await confirmed(conn, txHash);
  const tx = await conn.publicClient.getTransaction({ hash: txHash });
  return {
    txHash,
    blockNumber: receipt.blockNumber,
    gasUsed: receipt.gasUsed,
    calldataBytes: (tx.input.length - 2) / 2,
    settled: prepared.tasks.map((s) => s.taskId),
    rejected: prepared.rejected,
    deferred,
  };
}

export interface ClaimReceipt {
  txHash: Hash;
  amount: bigint;
  gasUsed: bigint;
}

/** Claims everything of the wallet account's credit that has matured, optionally paid to `to`. */
export async function claim(
  conn: SigningConnection,
  settlement: Address,
  to?: Address,
): Promise<ClaimReceipt> {
  const { request } = await conn.publicClient.simulateContract(
    to
      ? {
          address: settlement,
          abi: settlementAbi,
          functionName: 'claimTo',
          args: [to],
          account: conn.wallet.account,
        }
      : { address: settlement, abi: settlementAbi, functionName: 'claim', account: conn.wallet.account },
  );
  const txHash = await conn.wallet.writeContract(request);
  const receipt = await confirmed(conn, txHash);
  const [claimed] = parseEventLogs({ abi: settlementAbi, eventName: 'Claimed', logs: receipt.logs });
  return { txHash, amount: claimed?.args.amount ?? 0n, gasUsed: receipt.gasUsed };
}

/** Revokes one of the wallet account's session keys for good. */
export async function revokeSession(
  conn: SigningConnection,
  settlement: Address,
  sessionKey: Address,
): Promise<Hash> {
  const hash = await conn.wallet.writeContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'revokeSession',
    args: [sessionKey],
  });
  await confirmed(conn, hash);
  return hash;
}

// ------------------------------------------------------------------------- reads

type Reader = Pick<ChainPublicClient, 'readContract'>;

/** Everything credited to the worker and not claimed (matured or still in its challenge window). */
export function owed(client: Reader, settlement: Address, worker: Address): Promise<bigint> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'owed',
    args: [worker],
  });
}

/** What `claim` pays the worker now. */
export function claimable(client: Reader, settlement: Address, worker: Address): Promise<bigint> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'claimable',
    args: [worker],
  });
}

export function strikes(client: Reader, settlement: Address, worker: Address): Promise<bigint> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'strikes',
    args: [worker],
  });
}

/** Whether the task with this sequence number is settled. */
export function isSettled(client: Reader, settlement: Address, seq: bigint | number): Promise<boolean> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'settled',
    args: [BigInt(seq)],
  });
}

/** The worker's cached session grant, if any. */
export async function grantOf(
  client: Reader,
  settlement: Address,
  worker: Address,
): Promise<{ sessionKey: Address; expiresAt: bigint } | undefined> {
  const [sessionKey, expiresAt] = await client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'grantOf',
    args: [worker],
  });
  return BigInt(sessionKey) === 0n ? undefined : { sessionKey, expiresAt };
}

export interface SettlementConfig {
  pool: bigint;
  rewardPerTask: bigint;
  minQuorum: number;
  epochCap: bigint;
  epochSeconds: number;
}

export async function readConfig(client: Reader, settlement: Address): Promise<SettlementConfig> {
  const read = (functionName: 'pool' | 'rewardPerTask' | 'minQuorum' | 'epochCap' | 'EPOCH_SECONDS') =>
    client.readContract({ address: settlement, abi: settlementAbi, functionName });
  const [pool, rewardPerTask, minQuorum, epochCap, epochSeconds] = await Promise.all([
    read('pool'),
    read('rewardPerTask'),
    read('minQuorum'),
    read('epochCap'),
    read('EPOCH_SECONDS'),
  ]);
  return { pool, rewardPerTask, minQuorum: Number(minQuorum), epochCap, epochSeconds: Number(epochSeconds) };
}

export interface BlockRange {
  fromBlock?: bigint;
  toBlock?: bigint;
}

/** One settled task as rebuilt from the chain: the calldata of its batch and the events of that transaction. */
export interface SettledEvent extends ResultMetrics {
  seq: bigint;
  digest: Hex;
  /** Settled by a referee verdict rather than by a majority. */
  refereed: boolean;
  /** Voters of the settled digest whose votes counted (credited). */
  winners: readonly Address[];
  /** Voters of other digests whose votes counted (struck). */
  dissenters: readonly Address[];
  /** The canonical spec the coordinator recorded ('' if none); check it with taskIdOf before trusting it. */
  spec: string;
  /** The search whose pool paid it (OPERATOR_SEARCH: the operator's). */
  searchId: Hex;
  batchId: bigint;
  blockNumber: bigint;
  txHash: Hash;
  /** Position of the task in its batch. */
  logIndex: number;
}

type EventReader = Pick<ChainPublicClient, 'getContractEvents' | 'getTransaction'>;

/**
 * Every task settled in the range (default: from genesis), in chain order: enough to rebuild the
 * leaderboard with no coordinator. `settle` must have been called directly (the transaction's input is
 * the call), as the coordinator does.
 */
export async function readSettledEvents(
  client: EventReader,
  settlement: Address,
  range: BlockRange & { taskId?: Hex; seq?: bigint } = {},
): Promise<SettledEvent[]> {
  const window = {
    address: settlement,
    abi: settlementAbi,
    fromBlock: range.fromBlock ?? 0n,
    toBlock: range.toBlock,
  };
  const [batches, skips] = await Promise.all([
    client.getContractEvents({ ...window, eventName: 'BatchSettled' }),
    client.getContractEvents({ ...window, eventName: 'VoteSkipped' }),
  ]);
  const skipped = new Set(
    skips.map((s) => `${s.transactionHash}:${s.args.seq}:${s.args.worker?.toLowerCase()}`),
  );
  const out: SettledEvent[] = [];
  for (const batch of batches) {
    const tx = await client.getTransaction({ hash: batch.transactionHash });
    const { functionName, args } = decodeFunctionData({ abi: settlementAbi, data: tx.input });
    if (functionName !== 'settle') throw new Error(`${batch.transactionHash} is not a direct settle call`);
    const [searchId, workers, , tasks, specsBlob] = args;
    const decoded = decodeTasks(workers, tasks);
    const specs = await decodeSpecs(specsBlob, decoded.length);
    decoded.forEach((task, i) => {
      const counted = task.votes.filter(
        (v) => !skipped.has(`${batch.transactionHash}:${task.seq}:${v.worker.toLowerCase()}`),
      );
      const { votes: _votes, verdictSig, ...rest } = task;
      out.push({
        ...rest,
        refereed: verdictSig !== undefined,
        winners: counted.filter((v) => v.digest === task.digest).map((v) => v.worker),
        dissenters: counted.filter((v) => v.digest !== task.digest).map((v) => v.worker),
        spec: specs[i],
        searchId,
        batchId: batch.args.batchId!,
        blockNumber: batch.blockNumber,
        txHash: batch.transactionHash,
        logIndex: i,
      });
    });
  }
  return out.filter(
    (e) =>
      (range.taskId === undefined || e.taskId === range.taskId) &&
      (range.seq === undefined || e.seq === range.seq),
  );
}

export interface Credit {
  worker: Address;
  amount: bigint;
}

/**
 * The `credits` argument of `voidBatch` for a batch's credits (any order, a worker any number of times): one
 * total per worker, in the order of the batch's workers table (ascending addresses), as the contract commits.
 */
export function voidCredits(credits: readonly Credit[]): Credit[] {
  const totals = new Map<string, Credit>();
  for (const c of credits) {
    const key = c.worker.toLowerCase();
    const seen = totals.get(key);
    totals.set(key, { worker: getAddress(c.worker), amount: (seen?.amount ?? 0n) + c.amount });
  }
  return [...totals.entries()]
    .filter(([, c]) => c.amount > 0n)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, c]) => c);
}

export interface ClaimedEvent {
  worker: Address;
  amount: bigint;
  blockNumber: bigint;
  txHash: Hash;
}

/** Claims, optionally of one worker: the Rewards page's history. */
export async function readClaimedEvents(
  client: Pick<ChainPublicClient, 'getContractEvents'>,
  settlement: Address,
  range: BlockRange & { worker?: Address } = {},
): Promise<ClaimedEvent[]> {
  const logs = await client.getContractEvents({
    address: settlement,
    abi: settlementAbi,
    eventName: 'Claimed',
    args: range.worker ? { worker: range.worker } : undefined,
    fromBlock: range.fromBlock ?? 0n,
    toBlock: range.toBlock,
  });
  return logs.map((log) => ({
    worker: log.args.worker!,
    amount: log.args.amount!,
    blockNumber: log.blockNumber,
    txHash: log.transactionHash,
  }));
}
