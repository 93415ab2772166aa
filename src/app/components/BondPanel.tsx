/**
 * The wallet's bond on the settlement contract (docs/TRUST.md, "Bonds"): what is bonded and unbonding,
 * a deposit, a request to unbond and the withdrawal once the wait is over, each with its transaction.
 * A bond of at least the coordinator's minimum lets this wallet's results run as single replicas; a
 * result the referee proves wrong loses all of it.
 */
import { useEffect, useState } from 'react';
import { type Address, parseEther } from 'viem';
import { useReadContract, useWaitForTransactionReceipt, useWriteContract } from 'wagmi';
import { settlementAbi } from '../lib/chain.ts';
import { useInfo } from '../lib/context.ts';
import { formatEth } from '../lib/format.ts';
import { TxHash } from './TxHash.tsx';

/** An ETH amount typed by a person, in wei; an error message when it is not a positive amount. */
export function parseBondAmount(text: string): bigint | string {
  const t = text.trim();
  if (!/^\d+(\.\d{1,18})?$/.test(t)) return 'Enter an amount in ETH, such as 0.01.';
  const wei = parseEther(t);
  return wei > 0n ? wei : 'The amount must be more than 0.';
}

type Action = 'deposit' | 'unbond' | 'withdraw';

export function BondPanel({ address }: { address: Address }) {
  const info = useInfo();
  const settlement = info.settlement as Address;
  const bond = useReadContract({
    address: settlement,
    abi: settlementAbi,
    functionName: 'bondOf',
    args: [address],
    query: { refetchInterval: 4000 },
  });
  const delay = useReadContract({ address: settlement, abi: settlementAbi, functionName: 'unbondDelay' });
  const write = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: write.data });
  const [amount, setAmount] = useState('');
  const [action, setAction] = useState<Action>();
  const [inputError, setInputError] = useState<string>();
  const now = useNow(1000);

  useEffect(() => {
    if (receipt.status === 'success') void bond.refetch();
  }, [receipt.status, bond.refetch]);

  const [bonded, unbonding, availableAt] = (bond.data as readonly [bigint, bigint, bigint] | undefined) ?? [];
  const minBond = info.minBondWei ? BigInt(info.minBondWei) : undefined;
  const busy = write.isPending || receipt.isLoading;
  const matured = availableAt !== undefined && BigInt(Math.floor(now / 1000)) >= availableAt;

  function send(kind: Action) {
    setAction(kind);
    setInputError(undefined);
    if (kind === 'withdraw') {
      write.mutate({ address: settlement, abi: settlementAbi, functionName: 'withdrawBond' });
      return;
    }
    const wei = parseBondAmount(amount);
    if (typeof wei === 'string') {
      setInputError(wei);
      return;
    }
    if (kind === 'unbond' && bonded !== undefined && wei > bonded) {
      setInputError(`You have ${formatEth(bonded)} ETH bonded.`);
      return;
    }
    if (kind === 'deposit')
      write.mutate({ address: settlement, abi: settlementAbi, functionName: 'depositBond', value: wei });
    else
      write.mutate({ address: settlement, abi: settlementAbi, functionName: 'requestUnbond', args: [wei] });
  }

  return (
    <section className="bond" aria-labelledby="bond-title" data-testid="bond-panel">
      <h3 id="bond-title">Bond</h3>
      <p className="muted small">
        {minBond !== undefined
          ? `With at least ${formatEth(minBond)} ETH bonded (and enough results verified) your results can run on their own instead of being repeated by other volunteers. `
          : 'This coordinator asks no bond: every result is repeated by other volunteers. '}
        A result the referee proves wrong loses the whole bond to the reward pool. Unbonding takes{' '}
        {delay.data === undefined ? '…' : formatDuration(Number(delay.data))}, and the amount stays at stake
        until then.
      </p>
      <dl className="facts">
        <dt>Bonded</dt>
        <dd data-testid="bonded" data-value={bonded?.toString()}>
          {bonded === undefined ? '…' : `${formatEth(bonded)} ETH`}
          {minBond !== undefined && bonded !== undefined && (
            <span className="badge">
              {bonded >= minBond ? 'enough for single replicas' : 'below the minimum'}
            </span>
          )}
        </dd>
        <dt>Unbonding</dt>
        <dd data-testid="unbonding" data-value={unbonding?.toString()}>
          {unbonding === undefined
            ? '…'
            : unbonding === 0n
              ? 'nothing'
              : `${formatEth(unbonding)} ETH, ${matured ? 'ready to withdraw' : `withdrawable ${new Date(Number(availableAt) * 1000).toLocaleString()}`}`}
        </dd>
      </dl>
      <div className="row">
        <label>
          Amount (ETH){' '}
          <input
            type="text"
            inputMode="decimal"
            value={amount}
            onChange={(e) => setAmount(e.target.value)}
            aria-invalid={inputError !== undefined}
            aria-describedby="bond-input-error"
            data-testid="bond-amount"
            size={10}
          />
        </label>
        <button type="button" disabled={busy} onClick={() => send('deposit')} data-testid="bond-deposit">
          Deposit
        </button>
        <button
          type="button"
          className="secondary"
          disabled={busy || !bonded}
          onClick={() => send('unbond')}
          data-testid="bond-unbond"
        >
          Unbond
        </button>
        <button
          type="button"
          className="secondary"
          disabled={busy || !unbonding || !matured}
          onClick={() => send('withdraw')}
          data-testid="bond-withdraw"
        >
          Withdraw {unbonding ? `${formatEth(unbonding)} ETH` : ''}
        </button>
      </div>
      <p id="bond-input-error" className="warn small" role="alert">
        {inputError}
      </p>
      <p className="muted small" role="status" aria-live="polite" data-testid="bond-status">
        {write.error ? (
          <span className="warn">
            {action ? `${ACTION_TEXT[action]} failed` : 'Failed'}: {write.error.message.split('\n')[0]}
          </span>
        ) : write.data ? (
          <>
            {receipt.status === 'success'
              ? `${action ? ACTION_TEXT[action] : 'Done'} in `
              : receipt.status === 'error'
                ? 'Transaction failed: '
                : 'Waiting for '}
            <TxHash hash={write.data} />
          </>
        ) : write.isPending ? (
          'Confirm in your wallet…'
        ) : (
          ''
        )}
      </p>
    </section>
  );
}

const ACTION_TEXT: Record<Action, string> = {
  deposit: 'Deposit',
  unbond: 'Unbond request',
  withdraw: 'Withdrawal',
};

function formatDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} seconds`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} minutes`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86_400)} days`;
}

/** The current time, updated every `ms` (so a matured unbonding enables its button). */
function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
