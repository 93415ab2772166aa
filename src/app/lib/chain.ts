/** Reads of the Settlement contract's events for the Rewards and Leaderboard pages. */
import type { Address, Hex, PublicClient } from 'viem';
import { settlementAbi } from '../../chain/generated/settlement.ts';

export { settlementAbi };

export interface SettledEvent {
  taskId: Hex;
  digest: Hex;
  valCorrect: number;
  valCount: number;
  valLoss: bigint;
  winners: readonly Address[];
  dissenters: readonly Address[];
  txHash: Hex;
  blockNumber: bigint;
}

export interface ClaimEvent {
  worker: Address;
  amount: bigint;
  txHash: Hex;
  blockNumber: bigint;
}

export async function settledEvents(
  client: PublicClient,
  address: Address,
  taskId?: Hex,
): Promise<SettledEvent[]> {
  const logs = await client.getContractEvents({
    address,
    abi: settlementAbi,
    eventName: 'TaskSettled',
    args: taskId ? { taskId } : undefined,
    fromBlock: 0n,
    toBlock: 'latest',
  });
  return logs.map((log) => ({
    taskId: log.args.taskId as Hex,
    digest: log.args.digest as Hex,
    valCorrect: Number(log.args.valCorrect),
    valCount: Number(log.args.valCount),
    valLoss: BigInt(log.args.valLoss ?? 0),
    winners: log.args.winners ?? [],
    dissenters: log.args.dissenters ?? [],
    txHash: log.transactionHash as Hex,
    blockNumber: log.blockNumber as bigint,
  }));
}

export async function claimEvents(
  client: PublicClient,
  address: Address,
  worker: Address,
): Promise<ClaimEvent[]> {
  const logs = await client.getContractEvents({
    address,
    abi: settlementAbi,
    eventName: 'Claimed',
    args: { worker },
    fromBlock: 0n,
    toBlock: 'latest',
  });
  return logs.map((log) => ({
    worker: log.args.worker as Address,
    amount: log.args.amount as bigint,
    txHash: log.transactionHash as Hex,
    blockNumber: log.blockNumber as bigint,
  }));
}
