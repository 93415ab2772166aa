import { useEffect, useState } from 'react';
import { DevicePanel } from './components/DevicePanel.tsx';

const PAGES = ['contribute'] as const;
type Page = (typeof PAGES)[number];

function pageFromHash(): Page {
  const name = window.location.hash.replace(/^#\/?/, '');
  return (PAGES as readonly string[]).includes(name) ? (name as Page) : 'contribute';
}

export function App() {
  const [page, setPage] = useState<Page>(pageFromHash);
  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="#/contribute">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>Cambrian</span>
        </a>
        <nav aria-label="Main">
          <a href="#/contribute" aria-current={page === 'contribute' ? 'page' : undefined}>
            Contribute
          </a>
        </nav>
      </header>
      <main>{page === 'contribute' && <DevicePanel />}</main>
    </div>
  );
}
