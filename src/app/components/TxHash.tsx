import { useApp } from '../lib/context.ts';
import { shortHex } from '../lib/format.ts';

/** A transaction hash, linked to the chain's explorer when /info names one. */
export function TxHash({ hash }: { hash: string }) {
  const { info } = useApp();
  const explorer = typeof info?.explorerUrl === 'string' ? info.explorerUrl.replace(/\/+$/, '') : undefined;
  const text = <code title={hash}>{shortHex(hash)}</code>;
  return explorer ? (
    <a href={`${explorer}/tx/${hash}`} target="_blank" rel="noreferrer" data-testid="tx-link">
      {text}
    </a>
  ) : (
    <span data-testid="tx-hash">{text}</span>
  );
}
