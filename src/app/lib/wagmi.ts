/**
 * wagmi configuration built from the coordinator's /info: the chain and its RPC come from the
 * coordinator, wallets from EIP-6963 discovery plus the legacy injected provider.
 *
 * WalletConnect joins the list when VITE_WALLETCONNECT_PROJECT_ID is set at build time; its provider
 * (@walletconnect/ethereum-provider) is loaded only when someone picks it.
 */
import { type Chain, defineChain } from 'viem';
import { createConfig, http } from 'wagmi';
import { injected, walletConnect } from 'wagmi/connectors';
import type { Info } from './api.ts';

export const walletConnectProjectId = import.meta.env.VITE_WALLETCONNECT_PROJECT_ID as string | undefined;

export function chainFromInfo(info: Info): Chain {
  const rpcUrl = rpcUrlFor(info);
  const local = info.chainId === 31337;
  return defineChain({
    id: info.chainId,
    name: local ? 'Cambrian local chain (anvil)' : `Chain ${info.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
    testnet: local,
  });
}

/** The RPC the app reads from: /info's, a `?rpc=` override, or anvil's default port. */
export function rpcUrlFor(info: Info): string {
  const fromQuery = new URLSearchParams(window.location.search).get('rpc');
  return fromQuery ?? info.rpcUrl ?? 'http://127.0.0.1:8545';
}

export function createWagmiConfig(info: Info) {
  const chain = chainFromInfo(info);
  return createConfig({
    chains: [chain],
    connectors: walletConnectProjectId
      ? [injected(), walletConnect({ projectId: walletConnectProjectId, showQrModal: true })]
      : [injected()],
    multiInjectedProviderDiscovery: true,
    transports: { [chain.id]: http(chain.rpcUrls.default.http[0]) },
  });
}
