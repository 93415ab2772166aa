/**
 * A test wallet for the browser: an EIP-1193 provider, announced through EIP-6963, that forwards every
 * request to anvil for one of its unlocked dev accounts (anvil signs eth_signTypedData_v4 and sends
 * eth_sendTransaction itself). Installed with page.addInitScript before the app loads.
 */
import { expect, type Page } from '@playwright/test';

export interface TestWalletOptions {
  rpcUrl: string;
  account: string;
  name?: string;
  /** The chain the wallet starts on (hex); anvil's own when absent. Switching emits chainChanged. */
  startChainId?: string;
  /**
   * Hold each eth_signTypedData_v4 request until the test calls `window.__testWallet.approve()`, as a
   * person who approves in their wallet a moment later (the page sees 'Sign in your wallet…' meanwhile).
   */
  holdSignatures?: boolean;
}

/** What a wallet installed with `holdSignatures` exposes to the test on `window.__testWallet`. */
export interface HeldSignatures {
  /** Signature requests waiting for approval. */
  pending: number;
  /** Lets every waiting signature request through. */
  approve(): void;
}

/** Runs in the page (serialised by Playwright): no imports, no closures over test code. */
export function installTestWallet({
  rpcUrl,
  account,
  name = 'Anvil Dev Wallet',
  startChainId,
  holdSignatures = false,
}: TestWalletOptions): void {
  type Listener = (...args: unknown[]) => void;
  const listeners = new Map<string, Set<Listener>>();
  let id = 0;
  // Like a real wallet: no accounts are exposed until the page asks (eth_requestAccounts).
  let authorised = false;
  let chainId = startChainId;
  const waiting: (() => void)[] = [];
  const held: HeldSignatures = {
    get pending() {
      return waiting.length;
    },
    approve() {
      for (const release of waiting.splice(0)) release();
    },
  };
  (window as unknown as { __testWallet: HeldSignatures }).__testWallet = held;
  const emit = (event: string, value: unknown) => {
    for (const l of listeners.get(event) ?? []) l(value);
  };
  async function rpc(method: string, params: unknown[] = []): Promise<unknown> {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
    });
    const body = (await res.json()) as {
      result?: unknown;
      error?: { code: number; message: string; data?: unknown };
    };
    if (body.error)
      throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
    return body.result;
  }
  const provider = {
    isTestWallet: true,
    async request({ method, params }: { method: string; params?: unknown[] }): Promise<unknown> {
      switch (method) {
        case 'eth_requestAccounts':
          authorised = true;
          return [account];
        case 'eth_accounts':
          return authorised ? [account] : [];
        case 'eth_chainId':
          chainId ??= (await rpc('eth_chainId')) as string;
          return chainId;
        case 'wallet_switchEthereumChain': {
          const wanted = (params ?? [])[0] as { chainId: string };
          if (wanted.chainId !== (await rpc('eth_chainId'))) {
            throw Object.assign(new Error('Unrecognized chain ID'), { code: 4902 });
          }
          chainId = wanted.chainId;
          emit('chainChanged', wanted.chainId);
          return null;
        }
        case 'eth_signTypedData_v4':
          if (holdSignatures) await new Promise<void>((resolve) => waiting.push(resolve));
          return rpc(method, params ?? []);
        case 'wallet_addEthereumChain':
          return null;
        case 'wallet_requestPermissions':
        case 'wallet_getPermissions':
          return [{ parentCapability: 'eth_accounts' }];
        case 'wallet_revokePermissions':
          return null;
        default:
          return rpc(method, params ?? []);
      }
    },
    on(event: string, listener: Listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event)?.add(listener);
      return provider;
    },
    removeListener(event: string, listener: Listener) {
      listeners.get(event)?.delete(listener);
      return provider;
    },
  };
  const icon =
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Ccircle cx='16' cy='16' r='14' fill='%23f59e0b'/%3E%3C/svg%3E";
  const detail = Object.freeze({
    info: { uuid: '6b0a6bf4-0000-4000-8000-00000000a11e', name, icon, rdns: 'dev.cambrian.anvil' },
    provider,
  });
  const announce = () => window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail }));
  window.addEventListener('eip6963:requestProvider', announce);
  announce();
}

/** Connects the EIP-6963 test wallet (which starts on Ethereum mainnet) and moves it to the stack's chain. */
export async function connectTestWallet(page: Page, account: string, chainId: number): Promise<void> {
  await page.getByRole('button', { name: 'Connect wallet' }).click();
  await page.getByRole('menuitem', { name: 'Anvil Dev Wallet' }).click();
  await expect(page.getByTestId('account')).toHaveAttribute('title', new RegExp(account, 'i'));
  await expect(page.getByTestId('wrong-chain')).toBeVisible();
  await page.getByRole('button', { name: `Switch to chain ${chainId}` }).click();
  await expect(page.getByTestId('wrong-chain')).toBeHidden();
}
