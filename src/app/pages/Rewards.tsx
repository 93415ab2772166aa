/** Rewards: what the contract owes this wallet, a claim with its transaction status, and the history. */
import { useEffect } from 'react';
import type { Address } from 'viem';
import {
  useBalance,
  useConnection,
  useReadContract,
  useWaitForTransactionReceipt,
  useWriteContract,
} from 'wagmi';
import { BondPanel } from '../components/BondPanel.tsx';
import { ScrollRegion } from '../components/ScrollRegion.tsx';
import { TxHash } from '../components/TxHash.tsx';
import { RequireWallet } from '../components/Wallet.tsx';
import { settlementAbi } from '../lib/chain.ts';
import { useInfo } from '../lib/context.ts';
import { usePayoutTerms, useWalletHistory } from '../lib/earnings.ts';
import { formatEth, plural } from '../lib/format.ts';
import { type HistoryRow, historyRows, total } from '../lib/payout.ts';

/**
 * Gas limit sent with claim() (it uses about 40,000). A wallet's estimate is taken at the latest block, and
 * a claim mined after an epoch boundary matures more credit and writes more storage than estimated: with
 * 2-second epochs on the embedded chain an estimated limit ran out of gas under load. Unused gas is refunded.
 */
const CLAIM_GAS = 150_000n;

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
  const terms = usePayoutTerms();
  const balance = useBalance({ address, query: { refetchInterval: 4000 } });
  const claim = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: claim.data });
  const history = useWalletHistory(address);

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
  const claims = history.data?.claims ?? [];
  const claimed = total(claims);
  const claiming = claim.isPending || receipt.isLoading;
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
          label="Claimed so far"
          value={history.data ? `${formatEth(claimed)} ETH` : '…'}
          testId="claimed-total"
          raw={claimed.toString()}
        />
        <Stat
          label="Wallet balance"
          value={balance.data ? `${formatEth(balance.data.value, 4)} ETH` : '…'}
          testId="balance"
          raw={balance.data?.value.toString()}
        />
        <Stat
          label="Each task pays you"
          value={terms ? `${formatEth(terms.perTask)} ETH` : '…'}
          note={
            terms
              ? `${formatEth(terms.rewardPerTask)} ETH shared by ${plural(terms.quorum, 'volunteer')}`
              : undefined
          }
        />
        <Stat
          label="Strikes"
          value={strikes.data === undefined ? '…' : String(strikes.data)}
          note="results shown wrong (by the majority, or by the referee)"
        />
      </div>
      <div className="row">
        {(claimableWei > 0n || claiming) && (
          <button
            type="button"
            data-testid="claim"
            disabled={claiming}
            onClick={() =>
              claim.mutate({ address: settlement, abi: settlementAbi, functionName: 'claim', gas: CLAIM_GAS })
            }
          >
            {claim.isPending
              ? 'Confirm in your wallet…'
              : receipt.isLoading
                ? 'Claiming…'
                : `Claim ${formatEth(claimableWei)} ETH`}
          </button>
        )}
        {owedWei > claimableWei && !claiming && (
          <p className="muted small" data-testid="maturing">
            {formatEth(owedWei - claimableWei)} ETH becomes claimable once its challenge window has passed.
          </p>
        )}
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
          ) : owedWei > 0n || owed.data === undefined ? (
            ''
          ) : claims.length > 0 ? (
            `Everything you earned is claimed: ${formatEth(claimed)} ETH in ${plural(claims.length, 'claim')}.`
          ) : (
            'Nothing to claim yet: rewards are credited when your results settle on chain.'
          )}
        </p>
      </div>
      <BondPanel address={address} />
      <HistoryTable rows={historyRows(history.data)} loading={history.isLoading} />
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
  note,
}: {
  label: string;
  value: string;
  testId?: string;
  raw?: string;
  note?: string;
}) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" data-testid={testId} data-value={raw}>
        {value}
      </div>
      {note && <div className="stat-note">{note}</div>}
    </div>
  );
}

const STATE_TEXT = { claimed: 'claimed', owed: 'owed to you', strike: 'strike, no pay' } as const;

function HistoryTable({ rows, loading }: { rows: HistoryRow[]; loading: boolean }) {
  return (
    <ScrollRegion label="Your settlements and claims">
      <table className="table history" data-testid="history">
        <caption>Your settlements and claims (from the contract's events)</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Amount</th>
            <th scope="col" className="wide-only">
              Block
            </th>
            <th scope="col" className="wide-only">
              Transaction
            </th>
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
            <tr
              key={`${r.txHash}-${r.kind}-${r.detail}`}
              data-testid={`history-${r.kind}`}
              data-state={r.state}
            >
              <td className="wrap">
                {r.detail} {r.state && <span className={`pill pill-${r.state}`}>{STATE_TEXT[r.state]}</span>}
                {/* On a phone the transaction goes under the event, so the table fits without scrolling. */}
                <div className="narrow-only muted small">
                  Transaction <TxHash hash={r.txHash} />
                </div>
              </td>
              <td data-testid="history-amount" data-value={r.amount.toString()}>
                {r.kind === 'claim' ? '' : '+'}
                {formatEth(r.amount)} ETH
              </td>
              <td className="wide-only">{r.blockNumber.toString()}</td>
              <td className="wide-only">
                <TxHash hash={r.txHash} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollRegion>
  );
}
