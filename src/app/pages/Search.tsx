/** Search: best accuracy over time, throughput, workers online, agreements and disputes. */
import { useQuery } from '@tanstack/react-query';
import { LineChart } from '../components/Charts.tsx';
import type { SearchStats } from '../lib/api.ts';
import { useApp } from '../lib/context.ts';
import { percent } from '../lib/format.ts';

export function SearchPage() {
  const { api } = useApp();
  const stats = useQuery({ queryKey: ['search'], queryFn: () => api.search(), refetchInterval: 5000 });
  const s = stats.data;
  const figures = s ? searchFigures(s, Date.now()) : undefined;
  return (
    <section className="card" aria-labelledby="search-title">
      <h2 id="search-title">Search</h2>
      {stats.error && (
        <p className="warn" role="alert">
          Could not load the search: {String(stats.error)}
        </p>
      )}
      <div className="stats" data-testid="search-stats">
        <Stat label="Best accuracy" value={s?.bestAccuracy == null ? '—' : percent(s.bestAccuracy)} />
        <Stat label="Tasks per minute" value={figures ? figures.perMinute.toFixed(1) : '—'} />
        <Stat label="Workers online" value={s ? String(s.activeWorkers) : '—'} />
        <Stat label="Tasks settled" value={figures ? String(figures.settled) : '—'} />
        <Stat label="Agreed" value={figures ? String(figures.agreed) : '—'} />
        <Stat label="Disputes" value={figures ? String(figures.disputes) : '—'} />
        <Stat label="Open" value={figures ? String(figures.open) : '—'} />
      </div>
      {typeof s?.strategy === 'object' && s.strategy !== null && (
        <p className="muted small">Strategy: {strategyLabel(s.strategy)}</p>
      )}
      <h3>Best validation accuracy over time</h3>
      <LineChart
        values={(s?.progress ?? []).map((p) => p.best)}
        xs={(s?.progress ?? []).map((p) => p.at)}
        label="Best accuracy over time"
        format={(v) => percent(v)}
        testId="best-chart"
      />
      {s && s.progress.length > 0 && (
        <p className="muted small">
          {s.progress.length} settled tasks, from {new Date(s.progress[0].at).toLocaleTimeString()} to{' '}
          {new Date(s.progress[s.progress.length - 1].at).toLocaleTimeString()}.
        </p>
      )}
    </section>
  );
}

/** Throughput over the last ten minutes and the task counts the page shows. */
export function searchFigures(s: SearchStats, now: number) {
  const windowMs = 10 * 60_000;
  const recent = s.progress.filter((p) => p.at > now - windowMs);
  const first = recent[0]?.at ?? now;
  const minutes = Math.max(1, (now - first) / 60_000);
  const n = (state: string) => s.tasks[state] ?? 0;
  return {
    perMinute: recent.length / minutes,
    settled: n('settled'),
    agreed: n('agreed') + n('settling') + n('settled'),
    disputes: n('refereeing'),
    open: n('open'),
  };
}

function strategyLabel(strategy: object): string {
  const o = strategy as Record<string, unknown>;
  return (
    ['kind', 'name', 'strategy'].map((k) => o[k]).find((v) => typeof v === 'string') ??
    JSON.stringify(strategy).slice(0, 120)
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}
