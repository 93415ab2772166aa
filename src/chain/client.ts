/**
 * Typed helpers around the Settlement contract for the coordinator, the CLI and the web app.
 * Browser-safe: viem only, no node: imports.
 */
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
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

/** A viem chain for any RPC endpoint, with its id read from the node. */
export async function connectChain(rpcUrl: string): Promise<ChainConnection>;
export async function connectChain(rpcUrl: string, account: Account): Promise<SigningConnection>;
export async function connectChain(
  rpcUrl: string,
  account?: Account,
): Promise<ChainConnection | SigningConnection> {
  const probe = createPublicClient({ transport: http(rpcUrl) });
  const id = await probe.getChainId();
  const chain = defineChain({
    id,
    name: `chain ${id}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  // Local nodes mine instantly; poll fast so receipts come back in milliseconds, not seconds.
  const pollingInterval = /127\.0\.0\.1|localhost/.test(rpcUrl) ? 50 : 1_000;
  const publicClient = createPublicClient({ chain, transport: http(rpcUrl), pollingInterval });
  if (!account) return { chain, rpcUrl, publicClient };
  const wallet = createWalletClient({ chain, transport: http(rpcUrl), account, pollingInterval });
  return { chain, rpcUrl, publicClient, wallet };
}

// ------------------------------------------------------------------------- deployment

export interface DeployOptions {
  /** Owner: sets rewardPerTask and minQuorum, manages roles. Default: the deploying account. */
  admin?: Address;
  /** Holder of COORDINATOR_ROLE (may call settle). Default: the deploying account. */
  coordinator?: Address;
  rewardPerTask: bigint;
  minQuorum: number;
  /** Wei to put in the reward pool right after deployment. */
  fund?: bigint;
}

export interface Deployment {
  address: Address;
  deployTx: Hash;
  blockNumber: bigint;
  admin: Address;
  coordinator: Address;
}

async function confirmed(conn: ChainConnection, hash: Hash): Promise<TransactionReceipt> {
  const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
  return receipt;
}

/** Deploys, configures (constructor arguments) and optionally funds a Settlement contract. */
export async function deploySettlement(conn: SigningConnection, options: DeployOptions): Promise<Deployment> {
  const me = conn.wallet.account.address;
  const admin = options.admin ?? me;
  const coordinator = options.coordinator ?? me;
  const deployTx = await conn.wallet.deployContract({
    abi: settlementAbi,
    bytecode: settlementBytecode,
    args: [admin, coordinator, options.rewardPerTask, BigInt(options.minQuorum)],
  });
  const receipt = await confirmed(conn, deployTx);
  if (!receipt.contractAddress) throw new Error(`deployment ${deployTx} created no contract`);
  const address = getAddress(receipt.contractAddress);
  if (options.fund && options.fund > 0n) await fund(conn, address, options.fund);
  return { address, deployTx, blockNumber: receipt.blockNumber, admin, coordinator };
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

/** A settlement as `settle` takes it: the majority's metrics and every vote. */
export interface SettlementInput extends ResultMetrics {
  votes: readonly SignedVote[];
}

export function settlementInput(metrics: ResultMetrics, votes: readonly SignedVote[]): SettlementInput {
  return { ...metrics, votes };
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
}

/** `settle` rejected one settlement of the batch (and so the whole batch: it is all or nothing). */
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
   * Drop each settlement the contract rejects and retry with the rest (the default: the coordinator
   * logs `rejected` and, for AlreadySettled, simply marks the task settled). With false, the first
   * rejection throws SettlementRejectedError and nothing is sent.
   */
  skipRejected?: boolean;
}

export interface SettleReceipt {
  /** Undefined when nothing was left to send. */
  txHash?: Hash;
  blockNumber?: bigint;
  gasUsed: bigint;
  settled: Hex[];
  rejected: RejectedSettlement[];
}

/**
 * Settles a batch. `settle` is all or nothing, so the batch is simulated first; a rejected settlement
 * is named by the `index` its custom error carries, dropped (or thrown, see SettleOptions) and the
 * rest simulated again, so what is sent is expected to succeed. A transaction that still reverts
 * (the chain moved between simulation and inclusion) throws; calling again is safe, since already
 * settled tasks are then dropped as AlreadySettled.
 */
export async function settleBatch(
  conn: SigningConnection,
  settlement: Address,
  batch: readonly SettlementInput[],
  options: SettleOptions = {},
): Promise<SettleReceipt> {
  const skip = options.skipRejected ?? true;
  let pending = [...batch];
  const rejected: RejectedSettlement[] = [];
  while (pending.length > 0) {
    try {
      const { request } = await conn.publicClient.simulateContract({
        address: settlement,
        abi: settlementAbi,
        functionName: 'settle',
        args: [pending],
        account: conn.wallet.account,
      });
      const txHash = await conn.wallet.writeContract(request);
      const receipt = await confirmed(conn, txHash);
      return {
        txHash,
        blockNumber: receipt.blockNumber,
        gasUsed: receipt.gasUsed,
        settled: pending.map((s) => s.taskId),
        rejected,
      };
    } catch (err) {
      const decoded = contractErrorOf(err);
      const index = decoded && typeof decoded.args[0] === 'bigint' ? Number(decoded.args[0]) : -1;
      if (!decoded || index < 0 || index >= pending.length) throw err;
      const rejection = { ...decoded, taskId: pending[index].taskId };
      if (!skip) throw new SettlementRejectedError(index, rejection);
      rejected.push(rejection);
      pending = pending.filter((_, i) => i !== index);
    }
  }
  return { gasUsed: 0n, settled: [], rejected };
}

export interface ClaimReceipt {
  txHash: Hash;
  amount: bigint;
  gasUsed: bigint;
}

/** Claims everything the wallet's account is owed. */
export async function claim(conn: SigningConnection, settlement: Address): Promise<ClaimReceipt> {
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'claim',
    account: conn.wallet.account,
  });
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

export function owed(client: Reader, settlement: Address, worker: Address): Promise<bigint> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'owed',
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

export function isSettled(client: Reader, settlement: Address, taskId: Hex): Promise<boolean> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'settled',
    args: [taskId],
  });
}

/** The digest a task was settled with, or undefined if it is not settled. */
export async function settledDigest(
  client: Reader,
  settlement: Address,
  taskId: Hex,
): Promise<Hex | undefined> {
  const digest = await client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'settledDigest',
    args: [taskId],
  });
  return BigInt(digest) === 0n ? undefined : digest;
}

export interface SettlementConfig {
  pool: bigint;
  rewardPerTask: bigint;
  minQuorum: number;
}

export async function readConfig(client: Reader, settlement: Address): Promise<SettlementConfig> {
  const read = (functionName: 'pool' | 'rewardPerTask' | 'minQuorum') =>
    client.readContract({ address: settlement, abi: settlementAbi, functionName });
  const [pool, rewardPerTask, minQuorum] = await Promise.all([
    read('pool'),
    read('rewardPerTask'),
    read('minQuorum'),
  ]);
  return { pool, rewardPerTask, minQuorum: Number(minQuorum) };
}

export interface BlockRange {
  fromBlock?: bigint;
  toBlock?: bigint;
}

export interface SettledEvent {
  taskId: Hex;
  digest: Hex;
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
  winners: readonly Address[];
  dissenters: readonly Address[];
  blockNumber: bigint;
  txHash: Hash;
  logIndex: number;
}

/** Every TaskSettled event in the range (default: from genesis): enough to rebuild the leaderboard. */
export async function readSettledEvents(
  client: Pick<ChainPublicClient, 'getContractEvents'>,
  settlement: Address,
  range: BlockRange & { taskId?: Hex } = {},
): Promise<SettledEvent[]> {
  const logs = await client.getContractEvents({
    address: settlement,
    abi: settlementAbi,
    eventName: 'TaskSettled',
    args: range.taskId ? { taskId: range.taskId } : undefined,
    fromBlock: range.fromBlock ?? 0n,
    toBlock: range.toBlock,
  });
  return logs.map((log) => ({
    taskId: log.args.taskId!,
    digest: log.args.digest!,
    valCorrect: log.args.valCorrect!,
    valCount: log.args.valCount!,
    valLoss: log.args.valLoss!,
    winners: log.args.winners!,
    dissenters: log.args.dissenters!,
    blockNumber: log.blockNumber,
    txHash: log.transactionHash,
    logIndex: log.logIndex,
  }));
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
