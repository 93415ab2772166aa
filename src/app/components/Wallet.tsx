/**
 * Wallet connection: every wallet found through EIP-6963 (and the legacy injected provider), the
 * connected account, and a switch-chain button when the wallet is on another chain than the coordinator's.
 */
import { useState } from 'react';
import { useConnect, useConnection, useConnectors, useDisconnect, useSwitchChain } from 'wagmi';
import { useInfo } from '../lib/context.ts';
import { shortHex } from '../lib/format.ts';

export function WalletButton() {
  const connection = useConnection();
  const connectors = useConnectors();
  const connect = useConnect();
  const disconnect = useDisconnect();
  const [open, setOpen] = useState(false);

  if (connection.status === 'connected' && connection.address) {
    return (
      <div className="wallet">
        <span className="account" data-testid="account" title={connection.address}>
          <span className="dot" aria-hidden="true" />
          {shortHex(connection.address, 4)}
        </span>
        <button type="button" className="secondary small" onClick={() => disconnect.mutate({})}>
          Disconnect
        </button>
      </div>
    );
  }

  // EIP-6963 wallets announce themselves with a name and icon; the generic injected connector is
  // only worth showing when no wallet announced itself.
  const announced = connectors.filter((c) => c.id !== 'injected');
  const choices = announced.length > 0 ? announced : connectors;
  return (
    <div className="wallet">
      <button
        type="button"
        onClick={() => setOpen((o) => !o)}
        aria-expanded={open}
        aria-controls="wallet-menu"
        disabled={connection.status === 'connecting' || connection.status === 'reconnecting'}
      >
        {connection.status === 'connecting' ? 'Connecting…' : 'Connect wallet'}
      </button>
      {open && (
        <div
          id="wallet-menu"
          className="menu"
          role="menu"
          aria-label="Choose a wallet"
          onKeyDown={(e) => {
            if (e.key === 'Escape') setOpen(false);
          }}
        >
          {choices.length === 0 && (
            <p className="muted">
              No wallet found in this browser. Install a browser wallet such as MetaMask or Rabby, then
              reload.
            </p>
          )}
          {choices.map((c) => (
            <button
              key={c.uid}
              type="button"
              role="menuitem"
              className="menu-item"
              onClick={() => {
                setOpen(false);
                connect.mutate({ connector: c });
              }}
            >
              {c.icon ? (
                <img src={c.icon} alt="" width={20} height={20} />
              ) : (
                <span className="dot" aria-hidden="true" />
              )}
              {c.name}
            </button>
          ))}
        </div>
      )}
      {connect.error && (
        <p className="warn small" role="alert">
          {connect.error.message.split('\n')[0]}
        </p>
      )}
    </div>
  );
}

/** Children render only with a connected wallet on the coordinator's chain; otherwise the way there. */
export function RequireWallet({ children, purpose }: { children: React.ReactNode; purpose: string }) {
  const info = useInfo();
  const connection = useConnection();
  const switchChain = useSwitchChain();
  if (connection.status !== 'connected') {
    return (
      <p className="muted" data-testid="connect-hint">
        Connect a wallet (top right) to {purpose}.
      </p>
    );
  }
  if (connection.chainId !== info.chainId) {
    return (
      <div className="callout" role="alert" data-testid="wrong-chain">
        <p>
          Your wallet is on chain {connection.chainId ?? 'unknown'}, but this search settles on chain{' '}
          {info.chainId}.
        </p>
        <button
          type="button"
          onClick={() => switchChain.mutate({ chainId: info.chainId })}
          disabled={switchChain.isPending}
        >
          {switchChain.isPending ? 'Switching…' : `Switch to chain ${info.chainId}`}
        </button>
        {switchChain.error && <p className="warn small">{switchChain.error.message.split('\n')[0]}</p>}
      </div>
    );
  }
  return <>{children}</>;
}
