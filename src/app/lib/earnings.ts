/**
 * The numbers paid, read from the chain: the reward per task and quorum, and this wallet's settlements
 * and claims from the contract's events, so owed and claimed amounts survive a reload.
 */
import { useQuery } from '@tanstack/react-query';
import type { Address } from 'viem';
import { usePublicClient, useReadContract } from 'wagmi';
import {
  type ClaimedEvent,
  readClaimedEvents,
  readSettledEvents,
  type SettledEvent,
  settlementAbi,
} from './chain.ts';
import { useInfo } from './context.ts';
import { expectedPayout, type Settlement, settlementsOf } from './payout.ts';

export interface PayoutTerms {
  rewardPerTask: bigint;
  /** Votes the coordinator collects per task: the winners of a unanimous task. */
  quorum: number;
  /** What one task pays this tab when every vote agrees. */
  perTask: bigint;
}

/** The reward per task from the contract and the quorum from /info (else the contract's minimum). */
export function usePayoutTerms(): PayoutTerms | undefined {
  const info = useInfo();
  const settlement = info.settlement as Address;
  const reward = useReadContract({ address: settlement, abi: settlementAbi, functionName: 'rewardPerTask' });
  const minQuorum = useReadContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'minQuorum',
    query: { enabled: info.quorum === undefined },
  });
  const quorum = info.quorum ?? (minQuorum.data === undefined ? undefined : Number(minQuorum.data));
  if (reward.data === undefined || quorum === undefined) return undefined;
  const rewardPerTask = reward.data as bigint;
  return { rewardPerTask, quorum, perTask: expectedPayout(rewardPerTask, quorum) };
}

export interface WalletHistory {
  settlements: Settlement[];
  claims: ClaimedEvent[];
}

/** This wallet's settlements (with their amounts) and claims, from TaskSettled and Claimed events. */
export function useWalletHistory(account: Address | undefined, refetchMs: number | false = 8000) {
  const info = useInfo();
  const settlement = info.settlement as Address;
  const client = usePublicClient();
  const terms = usePayoutTerms();
  return useQuery({
    queryKey: ['wallet-history', settlement, account, terms?.rewardPerTask.toString()],
    enabled: Boolean(client && account && terms),
    refetchInterval: refetchMs,
    queryFn: async (): Promise<WalletHistory> => {
      if (!client || !account || !terms) return { settlements: [], claims: [] };
      const [settled, claims]: [SettledEvent[], ClaimedEvent[]] = await Promise.all([
        readSettledEvents(client, settlement),
        readClaimedEvents(client, settlement, { worker: account }),
      ]);
      return { settlements: settlementsOf(settled, account, terms.rewardPerTask), claims };
    },
  });
}
