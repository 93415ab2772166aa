import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query';
import { lazy, type ReactNode, Suspense, useEffect, useMemo, useState } from 'react';
import { WagmiProvider } from 'wagmi';
import { DevicePanel } from './components/DevicePanel.tsx';
import { WalletButton } from './components/Wallet.tsx';
import { CoordinatorApi, coordinatorUrl } from './lib/api.ts';
import { AppContext, type AppContextValue, useApp } from './lib/context.ts';
import { createWagmiConfig } from './lib/wagmi.ts';
import { ContributePage } from './pages/Contribute.tsx';

// Pages other than Contribute load on first visit: the first paint only needs the device check.
const RewardsPage = lazy(() => import('./pages/Rewards.tsx').then((m) => ({ default: m.RewardsPage })));
const LeaderboardPage = lazy(() =>
  import('./pages/Leaderboard.tsx').then((m) => ({ default: m.LeaderboardPage })),
);
const SponsorPage = lazy(() => import('./pages/Sponsor.tsx').then((m) => ({ default: m.SponsorPage })));
const SearchPage = lazy(() => import('./pages/Search.tsx').then((m) => ({ default: m.SearchPage })));

const PAGES = [
  { id: 'contribute', label: 'Contribute' },
  { id: 'rewards', label: 'Rewards' },
  { id: 'leaderboard', label: 'Leaderboard' },
  { id: 'search', label: 'Search' },
  { id: 'sponsor', label: 'Sponsor' },
] as const;
type Page = (typeof PAGES)[number]['id'];

function pageFromHash(): Page {
  const name = window.location.hash.replace(/^#\/?/, '').split('/')[0];
  return PAGES.some((p) => p.id === name) ? (name as Page) : 'contribute';
}

const queryClient = new QueryClient({
  defaultOptions: { queries: { refetchOnWindowFocus: false, retry: 1 } },
});

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <Root />
    </QueryClientProvider>
  );
}

/** Loads /info (retrying while the coordinator is away) and builds the wallet config from it. */
function Root() {
  const api = useMemo(() => new CoordinatorApi(coordinatorUrl()), []);
  const info = useQuery({
    queryKey: ['info', api.base],
    queryFn: () => api.info(),
    retry: true,
    retryDelay: (n) => Math.min(1000 * 2 ** n, 10_000),
    staleTime: Number.POSITIVE_INFINITY,
  });
  const config = useMemo(() => (info.data ? createWagmiConfig(info.data) : undefined), [info.data]);
  const context: AppContextValue = {
    api,
    info: info.data,
    infoError:
      info.failureCount > 0 && !info.data
        ? info.failureReason instanceof Error
          ? info.failureReason.message
          : 'unreachable'
        : undefined,
  };
  const shell = <Shell ready={Boolean(config)} />;
  return (
    <AppContext.Provider value={context}>
      {config ? <WagmiProvider config={config}>{shell}</WagmiProvider> : shell}
    </AppContext.Provider>
  );
}

function Shell({ ready }: { ready: boolean }) {
  const [page, setPage] = useState<Page>(pageFromHash);
  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  return (
    <div className="shell">
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href="#/contribute">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>Cambrian</span>
        </a>
        <nav aria-label="Main">
          {PAGES.map((p) => (
            <a key={p.id} href={`#/${p.id}`} aria-current={page === p.id ? 'page' : undefined}>
              {p.label}
            </a>
          ))}
        </nav>
        <div className="wallet-slot">{ready ? <WalletButton /> : null}</div>
      </header>
      <CoordinatorBanner />
      <main id="content" tabIndex={-1}>
        {page === 'contribute' && (
          <>
            <NeedsChain what="contribute">
              <ContributePage />
            </NeedsChain>
            <DevicePanel />
          </>
        )}
        {page === 'rewards' && (
          <NeedsChain what="see your rewards">
            <RewardsPage />
          </NeedsChain>
        )}
        {page === 'leaderboard' && (
          <NeedsChain what="show the leaderboard">
            <LeaderboardPage />
          </NeedsChain>
        )}
        {page === 'search' && (
          <NeedsChain what="show the search">
            <SearchPage />
          </NeedsChain>
        )}
        {page === 'sponsor' && (
          <NeedsChain what="post a search">
            <SponsorPage />
          </NeedsChain>
        )}
      </main>
      <footer className="footer muted">
        Integer-exact training in your browser · every result is checked by majority vote on chain
      </footer>
    </div>
  );
}

function CoordinatorBanner() {
  const { api, infoError } = useApp();
  if (!infoError) return null;
  return (
    <p className="banner warn" role="alert" data-testid="coordinator-down">
      The coordinator at <code>{api.base}</code> is not answering ({infoError}). Retrying…
    </p>
  );
}

function NeedsChain({ what, children }: { what: string; children: ReactNode }) {
  const { info } = useApp();
  if (!info) {
    return (
      <section className="card">
        <p className="muted" role="status">
          The coordinator has not answered yet; it is needed to {what}.
        </p>
      </section>
    );
  }
  return (
    <Suspense
      fallback={
        <section className="card">
          <p className="muted" role="status">
            Loading…
          </p>
        </section>
      }
    >
      {children}
    </Suspense>
  );
}
