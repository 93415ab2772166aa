/** Search: best accuracy over time, throughput, workers online, agreements and disputes. */
import { useQuery } from '@tanstack/react-query';
import { Legend, LineChart } from '../components/Charts.tsx';
import type { SearchStats } from '../lib/api.ts';
import { useApp } from '../lib/context.ts';
import { percent, plural } from '../lib/format.ts';

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
      {s && <BudgetProgress strategy={s.strategy} />}
      <div className="stats" data-testid="search-stats">
        <Stat label="Best accuracy" value={s?.bestAccuracy == null ? '—' : percent(s.bestAccuracy)} />
        <Stat label="Tasks per minute" value={figures ? figures.perMinute.toFixed(1) : '—'} />
        <Stat
          label="Volunteers working now"
          value={s ? String(s.onlineWorkers) : '—'}
          testId="workers-online"
        />
        <Stat label="Settled on chain" value={figures ? String(figures.settled) : '—'} />
        <Stat label="Results agreed" value={figures ? String(figures.agreed) : '—'} />
        <Stat label="Disputes (with the referee)" value={figures ? String(figures.disputes) : '—'} />
        <Stat
          label="Waiting for volunteers"
          value={figures ? String(figures.open) : '—'}
          testId="open-tasks"
        />
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
        formatX={clockTime(s?.progress ?? [])}
        xLabel="time of settlement"
        yLabel="best accuracy so far"
        yRange={[0, 1]}
        testId="best-chart"
      />
      <Legend items={[{ mark: 'line', text: 'best validation accuracy among the tasks settled so far' }]} />
      {s && s.progress.length > 0 && (
        <p className="muted small" data-testid="settled-summary">
          {plural(s.progress.length, 'settled task')}, from {new Date(s.progress[0].at).toLocaleTimeString()}{' '}
          to {new Date(s.progress[s.progress.length - 1].at).toLocaleTimeString()}.
        </p>
      )}
    </section>
  );
}

/** Clock times for the chart's axis, with seconds when the settlements span less than two minutes. */
export function clockTime(progress: { at: number }[]): (t: number) => string {
  const span = progress.length > 1 ? progress[progress.length - 1].at - progress[0].at : 0;
  const parts: Intl.DateTimeFormatOptions =
    span < 120_000
      ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { hour: '2-digit', minute: '2-digit' };
  return (t) => new Date(t).toLocaleTimeString([], parts);
}

/** Trials proposed against the search's budget, from the coordinator's strategy summary. */
export function budgetProgress(strategy: unknown): { trials: number; budget: number } | undefined {
  if (typeof strategy !== 'object' || strategy === null) return undefined;
  const { trials, budget } = strategy as { trials?: unknown; budget?: unknown };
  if (typeof trials !== 'number' || typeof budget !== 'number' || budget <= 0) return undefined;
  return { trials: Math.min(trials, budget), budget };
}

function BudgetProgress({ strategy }: { strategy: unknown }) {
  const p = budgetProgress(strategy);
  if (!p) return null;
  return (
    <div className="budget" data-testid="budget">
      <p className="small">
        {p.trials} of {plural(p.budget, 'architecture')} in this search's budget tried
      </p>
      <div
        className="progress"
        role="progressbar"
        aria-label="Search budget used"
        aria-valuemin={0}
        aria-valuemax={p.budget}
        aria-valuenow={p.trials}
      >
        <div className="progress-fill" style={{ width: percent(p.trials / p.budget) }} />
      </div>
    </div>
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

function Stat({ label, value, testId }: { label: string; value: string; testId?: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" data-testid={testId}>
        {value}
      </div>
    </div>
  );
}
