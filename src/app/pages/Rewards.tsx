/** Rewards: what the contract owes this wallet, a claim with its transaction status, and the history. */
import { useQuery } from '@tanstack/react-query';
import { useEffect } from 'react';
import type { Address } from 'viem';
import {
  useBalance,
  useConnection,
  usePublicClient,
  useReadContract,
  useWaitForTransactionReceipt,
  useWriteContract,
} from 'wagmi';
import { TxHash } from '../components/TxHash.tsx';
import { RequireWallet } from '../components/Wallet.tsx';
import { readClaimedEvents, readSettledEvents, settlementAbi } from '../lib/chain.ts';
import { useInfo } from '../lib/context.ts';
import { formatEth, shortHex } from '../lib/format.ts';

export function RewardsPage() {
  return (
    <section className="card" aria-labelledby="rewards-title">
      <h2 id="rewards-title">Rewards</h2>
      <RequireWallet purpose="see and claim your rewards">
        <RewardsView />
      </RequireWallet>
    </section>
  );
}

function RewardsView() {
  const info = useInfo();
  const settlement = info.settlement as Address;
  const { address } = useConnection() as { address: Address };
  const owed = useReadContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'owed',
    args: [address],
    query: { refetchInterval: 4000 },
  });
  // Credits mature after the contract's challenge window; only the matured part can be claimed.
  const claimable = useReadContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'claimable',
    args: [address],
    query: { refetchInterval: 4000 },
  });
  const strikes = useReadContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'strikes',
    args: [address],
    query: { refetchInterval: 10_000 },
  });
  const reward = useReadContract({ address: settlement, abi: settlementAbi, functionName: 'rewardPerTask' });
  const balance = useBalance({ address, query: { refetchInterval: 4000 } });
  const claim = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: claim.data });
  const history = useHistory(settlement, address);

  useEffect(() => {
    if (receipt.status === 'success') {
      void owed.refetch();
      void claimable.refetch();
      void balance.refetch();
      void history.refetch();
    }
  }, [receipt.status, owed.refetch, claimable.refetch, balance.refetch, history.refetch]);

  const owedWei = (owed.data as bigint | undefined) ?? 0n;
  const claimableWei = (claimable.data as bigint | undefined) ?? 0n;
  return (
    <>
      <div className="stats">
        <Stat
          label="Owed to you"
          value={owed.data === undefined ? '…' : `${formatEth(owedWei)} ETH`}
          testId="owed"
          raw={owedWei.toString()}
        />
        <Stat
          label="Wallet balance"
          value={balance.data ? `${formatEth(balance.data.value, 4)} ETH` : '…'}
          testId="balance"
          raw={balance.data?.value.toString()}
        />
        <Stat
          label="Reward per task"
          value={reward.data === undefined ? '…' : `${formatEth(reward.data as bigint)} ETH`}
        />
        <Stat label="Strikes" value={strikes.data === undefined ? '…' : String(strikes.data)} />
      </div>
      <div className="row">
        <button
          type="button"
          data-testid="claim"
          disabled={claimableWei === 0n || claim.isPending || receipt.isLoading}
          onClick={() => claim.mutate({ address: settlement, abi: settlementAbi, functionName: 'claim' })}
        >
          {claim.isPending
            ? 'Confirm in your wallet…'
            : receipt.isLoading
              ? 'Claiming…'
              : `Claim ${formatEth(claimableWei)} ETH`}
        </button>
        <p
          className="muted small"
          role="status"
          aria-live="polite"
          data-testid="claim-status"
          data-status={claimStatus(claim, receipt)}
        >
          {claim.error ? (
            <span className="warn">Claim failed: {claim.error.message.split('\n')[0]}</span>
          ) : claim.data ? (
            <>
              {receipt.status === 'success'
                ? 'Claimed in '
                : receipt.status === 'error'
                  ? 'Transaction failed: '
                  : 'Waiting for '}
              <TxHash hash={claim.data} />
              {receipt.data && ` (block ${receipt.data.blockNumber})`}
            </>
          ) : owedWei === 0n ? (
            'Nothing to claim yet: rewards are credited when your votes settle on chain.'
          ) : (
            ''
          )}
        </p>
      </div>
      <HistoryTable rows={history.data ?? []} loading={history.isLoading} />
    </>
  );
}

function claimStatus(
  claim: { isPending: boolean; error: unknown; data?: string },
  receipt: { status: string },
) {
  if (claim.error) return 'error';
  if (claim.isPending) return 'signing';
  if (!claim.data) return 'idle';
  return receipt.status === 'success' ? 'confirmed' : receipt.status === 'error' ? 'failed' : 'pending';
}

function Stat({
  label,
  value,
  testId,
  raw,
}: {
  label: string;
  value: string;
  testId?: string;
  raw?: string;
}) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" data-testid={testId} data-value={raw}>
        {value}
      </div>
    </div>
  );
}

interface HistoryRow {
  kind: 'settled' | 'claim';
  detail: string;
  amount?: bigint;
  txHash: string;
  blockNumber: bigint;
}

function useHistory(settlement: Address, account: Address) {
  const client = usePublicClient();
  return useQuery({
    queryKey: ['history', settlement, account],
    enabled: Boolean(client),
    refetchInterval: 8000,
    queryFn: async (): Promise<HistoryRow[]> => {
      if (!client) return [];
      const [settled, claims] = await Promise.all([
        readSettledEvents(client, settlement),
        readClaimedEvents(client, settlement, { worker: account }),
      ]);
      const lower = account.toLowerCase();
      const rows: HistoryRow[] = [
        ...settled
          .filter(
            (e) =>
              e.winners.some((w) => w.toLowerCase() === lower) ||
              e.dissenters.some((w) => w.toLowerCase() === lower),
          )
          .map((e) => ({
            kind: 'settled' as const,
            detail: `${e.winners.some((w) => w.toLowerCase() === lower) ? 'Majority vote' : 'Dissent (strike)'} on task ${shortHex(e.taskId)}`,
            txHash: e.txHash,
            blockNumber: e.blockNumber,
          })),
        ...claims.map((c) => ({
          kind: 'claim' as const,
          detail: 'Claimed',
          amount: c.amount,
          txHash: c.txHash,
          blockNumber: c.blockNumber,
        })),
      ];
      return rows.sort((a, b) => Number(b.blockNumber - a.blockNumber));
    },
  });
}

function HistoryTable({ rows, loading }: { rows: HistoryRow[]; loading: boolean }) {
  return (
    <div className="table-wrap">
      <table className="table" data-testid="history">
        <caption>Settlements and claims (from the contract's events)</caption>
        <thead>
          <tr>
            <th scope="col">Block</th>
            <th scope="col">Event</th>
            <th scope="col">Amount</th>
            <th scope="col">Transaction</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={4} className="muted">
                {loading ? 'Reading the chain…' : 'No settlements or claims for this wallet yet.'}
              </td>
            </tr>
          )}
          {rows.map((r) => (
            <tr key={`${r.txHash}-${r.kind}-${r.detail}`} data-testid={`history-${r.kind}`}>
              <td>{r.blockNumber.toString()}</td>
              <td>{r.detail}</td>
              <td>{r.amount === undefined ? '—' : `${formatEth(r.amount)} ETH`}</td>
              <td>
                <TxHash hash={r.txHash} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
