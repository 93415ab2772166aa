/**
 * Sponsors' searches on the settlement contract (docs/CONTRACT.md, "Searches"): open (with funding), fund,
 * close, reopen, withdraw, read. Each search has its own pool and terms; a batch of its tasks is paid from
 * that pool only (`settle(searchId, …)`), so no search's funds pay another's tasks.
 */
import { type Address, type Hash, type Hex, parseEventLogs, type TransactionReceipt } from 'viem';
import { type ChainPublicClient, confirmed, type SigningConnection, settlementAbi } from './client.ts';

type Reader = Pick<ChainPublicClient, 'readContract'>;

export interface ChainSearch {
  /** The account that opened it (zero address: no such search on chain). */
  sponsor: Address;
  rewardPerTask: bigint;
  /** Most credited per epoch from this search's pool. */
  epochCap: bigint;
  /** Unix seconds after which its batches no longer settle and the sponsor may withdraw; 0 while open. */
  settleUntil: bigint;
  /** What no worker is owed yet: the most further tasks can take, and what the sponsor may withdraw. */
  pool: bigint;
  epochPaid: bigint;
}

const NO_SPONSOR = '0x0000000000000000000000000000000000000000';

export async function searchOf(
  client: Reader,
  settlement: Address,
  searchId: Hex,
): Promise<ChainSearch | undefined> {
  const [sponsor, rewardPerTask, epochCap, settleUntil, pool, epochPaid] = await client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'searchOf',
    args: [searchId],
  });
  if (sponsor === NO_SPONSOR) return undefined;
  return { sponsor, rewardPerTask, epochCap, settleUntil: BigInt(settleUntil), pool, epochPaid };
}

type SearchWrite = 'openSearch' | 'fundSearch' | 'closeSearch' | 'reopenSearch' | 'withdrawSearch';

/** Simulates (so a revert names its custom error before anything is sent), sends, returns the receipt. */
async function write(
  conn: SigningConnection,
  settlement: Address,
  functionName: SearchWrite,
  args: readonly unknown[],
  value?: bigint,
): Promise<TransactionReceipt> {
  const { request } = await conn.publicClient.simulateContract({
    address: settlement,
    abi: settlementAbi,
    functionName,
    // biome-ignore lint/suspicious/noExplicitAny: one helper for five functions' argument tuples
    args: args as any,
    value,
    account: conn.wallet.account,
  } as Parameters<typeof conn.publicClient.simulateContract>[0]);
  const hash = await conn.wallet.writeContract(request as Parameters<typeof conn.wallet.writeContract>[0]);
  return confirmed(conn, hash);
}

const sent = (receipt: Promise<TransactionReceipt>): Promise<Hash> => receipt.then((r) => r.transactionHash);

export interface OpenSearchOptions {
  rewardPerTask: bigint;
  /** Most credited per epoch (default: 1,000 tasks' rewards). */
  epochCap?: bigint;
  /** Wei to fund it with in the same transaction. */
  fund?: bigint;
}

/** Opens `searchId` with the wallet account as its sponsor. */
export function openSearch(
  conn: SigningConnection,
  settlement: Address,
  searchId: Hex,
  options: OpenSearchOptions,
): Promise<Hash> {
  if (options.rewardPerTask <= 0n) throw new Error('the reward per task must be more than 0');
  const cap = options.epochCap ?? options.rewardPerTask * 1_000n;
  return sent(
    write(conn, settlement, 'openSearch', [searchId, options.rewardPerTask, cap], options.fund ?? 0n),
  );
}

/** Adds `amount` (wei) to the search's pool. */
export function fundSearch(
  conn: SigningConnection,
  settlement: Address,
  searchId: Hex,
  amount: bigint,
): Promise<Hash> {
  if (amount <= 0n) throw new Error('the amount to fund must be more than 0');
  return sent(write(conn, settlement, 'fundSearch', [searchId], amount));
}

/** Closes the sponsor's search: it settles for the contract's grace, then its pool can be withdrawn. */
export function closeSearch(conn: SigningConnection, settlement: Address, searchId: Hex): Promise<Hash> {
  return sent(write(conn, settlement, 'closeSearch', [searchId]));
}

export function reopenSearch(conn: SigningConnection, settlement: Address, searchId: Hex): Promise<Hash> {
  return sent(write(conn, settlement, 'reopenSearch', [searchId]));
}

/** Withdraws `amount` (default: all) of the sponsor's closed search's pool once its grace is over. */
export async function withdrawSearch(
  conn: SigningConnection,
  settlement: Address,
  searchId: Hex,
  amount?: bigint,
): Promise<{ txHash: Hash; amount: bigint }> {
  const take = amount ?? (await searchOf(conn.publicClient, settlement, searchId))?.pool ?? 0n;
  const receipt = await write(conn, settlement, 'withdrawSearch', [searchId, take]);
  const [log] = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'SearchWithdrawn' });
  return { txHash: receipt.transactionHash, amount: log?.args.amount ?? take };
}

/** How long a closed search still settles (seconds). */
export function searchGrace(client: Reader, settlement: Address): Promise<bigint> {
  return client.readContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'SEARCH_GRACE_SECONDS',
  });
}
