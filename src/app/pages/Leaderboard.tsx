/**
 * Leaderboard: the settled architectures, sortable, on an accuracy/cost Pareto chart; each with its
 * drawing, the TaskSettled event that proves it, an ONNX export re-trained and checked in this tab,
 * and a canvas to try it on.
 */
import { useQuery } from '@tanstack/react-query';
import { useMemo, useRef, useState } from 'react';
import type { Address, Hex } from 'viem';
import { usePublicClient } from 'wagmi';
import { type AnyTaskSpec, isV2 } from '../../protocol/spec.ts';
import { engineWorker, progressProxy } from '../../worker/engine-client.ts';
import { ArchDiagram } from '../components/ArchDiagram.tsx';
import { DigitPad } from '../components/DigitPad.tsx';
import { ParetoChart } from '../components/Pareto.tsx';
import { ScrollRegion } from '../components/ScrollRegion.tsx';
import { TxHash } from '../components/TxHash.tsx';
import { readSettledEvents, type SettledEvent } from '../lib/chain.ts';
import { useApp, useInfo } from '../lib/context.ts';
import { datasetSource } from '../lib/contributor.ts';
import { useDeviceCheck, votingBackend } from '../lib/device.ts';
import { compactNumber, percent, plural, shortHex } from '../lib/format.ts';
import { type RankedModel, rankModel } from '../lib/models.ts';

type SortKey = 'accuracy' | 'params' | 'flops' | 'label' | 'loss';

export function LeaderboardPage() {
  const { api } = useApp();
  const info = useInfo();
  const client = usePublicClient();
  const board = useQuery({
    queryKey: ['leaderboard'],
    queryFn: () => api.leaderboard(),
    refetchInterval: 5000,
  });
  const events = useQuery({
    queryKey: ['settled', info.settlement],
    enabled: Boolean(client),
    refetchInterval: 5000,
    queryFn: async () => {
      if (!client) return new Map<string, SettledEvent>();
      const list = await readSettledEvents(client, info.settlement as Address);
      return new Map(list.map((e) => [e.taskId.toLowerCase(), e]));
    },
  });
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'accuracy', desc: true });
  const [axis, setAxis] = useState<'params' | 'flops'>('params');
  const [selected, setSelected] = useState<string>();
  const [track, setTrack] = useState<string>('all');
  const ranked = useMemo(() => (board.data ?? []).map(rankModel), [board.data]);
  const tracks = useMemo(() => [...new Set(ranked.map((m) => m.track))].sort(), [ranked]);
  const models = useMemo(
    () =>
      sortModels(
        ranked.filter((m) => track === 'all' || m.track === track),
        sort.key,
        sort.desc,
      ),
    [ranked, track, sort],
  );
  const chosen = models.find((m) => m.entry.taskId === selected) ?? models[0];

  return (
    <>
      <section className="card" aria-labelledby="board-title">
        <h2 id="board-title">Leaderboard</h2>
        {board.error && (
          <p className="warn" role="alert">
            Could not load the leaderboard: {String(board.error)}
          </p>
        )}
        {board.isLoading && (
          <p className="muted" role="status">
            Loading…
          </p>
        )}
        {models.length === 0 && !board.isLoading && (
          <p className="muted">No task has settled yet. Start contributing to make the first one.</p>
        )}
        {models.length > 0 && (
          <>
            {tracks.length > 1 && <TrackFilter tracks={tracks} track={track} onChange={setTrack} />}
            <div className="chart-head">
              <h3>Accuracy against cost</h3>
              <fieldset className="segmented">
                <legend className="sr-only">Cost axis</legend>
                {(['params', 'flops'] as const).map((a) => (
                  <label key={a}>
                    <input
                      type="radio"
                      name="axis"
                      value={a}
                      checked={axis === a}
                      onChange={() => setAxis(a)}
                    />
                    {a === 'params' ? 'Parameters' : 'FLOPs'}
                  </label>
                ))}
              </fieldset>
            </div>
            <ParetoChart models={models} axis={axis} selected={chosen?.entry.taskId} onSelect={setSelected} />
            <BoardTable
              models={models}
              sort={sort}
              onSort={setSort}
              selected={chosen?.entry.taskId}
              onSelect={setSelected}
              events={events.data}
            />
          </>
        )}
      </section>
      {chosen && (
        <ModelDetail
          key={chosen.entry.taskId}
          model={chosen}
          event={events.data?.get(chosen.entry.taskId.toLowerCase())}
          eventsLoaded={events.isSuccess}
        />
      )}
    </>
  );
}

/** Shows one search track's models (MLP on MNIST, CNN on MNIST, …) or all of them. */
function TrackFilter({
  tracks,
  track,
  onChange,
}: {
  tracks: string[];
  track: string;
  onChange: (track: string) => void;
}) {
  return (
    <fieldset className="segmented" data-testid="track-filter">
      <legend className="sr-only">Track</legend>
      {['all', ...tracks].map((t) => (
        <label key={t}>
          <input type="radio" name="track" value={t} checked={track === t} onChange={() => onChange(t)} />
          {t === 'all' ? 'All tracks' : t}
        </label>
      ))}
    </fieldset>
  );
}

function sortModels(models: RankedModel[], key: SortKey, desc: boolean): RankedModel[] {
  const value = (m: RankedModel): number | string =>
    key === 'label'
      ? m.label
      : key === 'loss'
        ? Number(m.entry.valLoss ?? 0) / Math.max(1, m.entry.valCount)
        : m[key];
  return [...models].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    const c = typeof va === 'string' ? va.localeCompare(String(vb)) : va - (vb as number);
    return desc ? -c : c;
  });
}

/** Accuracy first, so it stays in view on a phone; `wide` columns are hidden on narrow screens. */
const COLUMNS: { key: SortKey; label: string; wide?: boolean }[] = [
  { key: 'accuracy', label: 'Accuracy' },
  { key: 'label', label: 'Architecture' },
  { key: 'loss', label: 'Val. loss', wide: true },
  { key: 'params', label: 'Parameters' },
  { key: 'flops', label: 'FLOPs', wide: true },
];

function BoardTable({
  models,
  sort,
  onSort,
  selected,
  onSelect,
  events,
}: {
  models: RankedModel[];
  sort: { key: SortKey; desc: boolean };
  onSort: (s: { key: SortKey; desc: boolean }) => void;
  selected?: string;
  onSelect: (id: string) => void;
  events?: Map<string, SettledEvent>;
}) {
  return (
    <ScrollRegion label="Settled models">
      <table className="table" data-testid="leaderboard">
        <caption>Settled models (select a row for details)</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            {COLUMNS.map((c) => (
              <th
                key={c.key}
                scope="col"
                className={c.wide ? 'wide-only' : undefined}
                aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
              >
                <button
                  type="button"
                  className="sort"
                  onClick={() =>
                    onSort({ key: c.key, desc: sort.key === c.key ? !sort.desc : c.key !== 'label' })
                  }
                >
                  {c.label}
                  <span aria-hidden="true">{sort.key === c.key ? (sort.desc ? ' ▾' : ' ▴') : ''}</span>
                </button>
              </th>
            ))}
            <th scope="col">On chain</th>
          </tr>
        </thead>
        <tbody>
          {models.map((m, i) => {
            const ev = events?.get(m.entry.taskId.toLowerCase());
            return (
              <tr
                key={m.entry.taskId}
                data-testid="board-row"
                data-task-id={m.entry.taskId}
                aria-selected={m.entry.taskId === selected}
                className={m.entry.taskId === selected ? 'selected' : ''}
              >
                <td>{i + 1}</td>
                <td>{percent(m.accuracy)}</td>
                <td className="arch-cell">
                  <button type="button" className="link" onClick={() => onSelect(m.entry.taskId)}>
                    {m.label}
                  </button>
                </td>
                <td className="wide-only">
                  {m.entry.valLoss === undefined
                    ? '—'
                    : (Number(m.entry.valLoss) / 65536 / Math.max(1, m.entry.valCount)).toFixed(4)}
                </td>
                <td>{compactNumber(m.params)}</td>
                <td className="wide-only">{compactNumber(m.flops)}</td>
                <td>
                  {ev ? (
                    <span className="ok">✓ block {ev.blockNumber.toString()}</span>
                  ) : (
                    // Listed models are settled: without an event the chain is still being read.
                    <span className="muted">{events ? 'no event yet' : 'checking…'}</span>
                  )}
                  {m.entry.verification && (
                    <span className="muted" data-testid="verification">
                      {' '}
                      · {VERIFICATION_TEXT[m.entry.verification]}
                    </span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </ScrollRegion>
  );
}

/** How a listed result was verified, in words (docs/TRUST.md). */
const VERIFICATION_TEXT = {
  votes: 'agreeing votes + audit',
  audit: 'one vote + audit',
  're-executed': 're-executed in full',
} as const;

function ModelDetail({
  model,
  event,
  eventsLoaded,
}: {
  model: RankedModel;
  event?: SettledEvent;
  eventsLoaded: boolean;
}) {
  const { entry, spec } = model;
  return (
    <section className="card" aria-labelledby="detail-title" data-testid="model-detail">
      <h2 id="detail-title">
        {model.label} <span className="muted small">task {shortHex(entry.taskId)}</span>
      </h2>
      <div className="detail-grid">
        <div>
          <h3>Architecture</h3>
          {spec ? (
            <ArchDiagram spec={spec} />
          ) : (
            <p className="muted">The coordinator did not send this task's spec.</p>
          )}
          {spec && (
            <p className="muted small">
              {spec.dataset.name} · batch {spec.training.batch} · {spec.training.steps} steps · lr{' '}
              {spec.training.learningRateQ16 / 65536} · momentum {spec.training.momentumQ16 / 65536}
            </p>
          )}
        </div>
        <div>
          <h3>On-chain proof</h3>
          <Proof entry={model} event={event} loaded={eventsLoaded} />
        </div>
      </div>
      {spec && <ExportAndTry model={model} chainDigest={event?.digest} />}
    </section>
  );
}

function Proof({ entry: m, event, loaded }: { entry: RankedModel; event?: SettledEvent; loaded: boolean }) {
  if (!event)
    return (
      <p className="muted" data-testid="proof-pending">
        {loaded ? 'No TaskSettled event for this task yet.' : 'Reading the chain…'}
      </p>
    );
  const matches = event.valCorrect === m.entry.valCorrect && event.valCount === m.entry.valCount;
  return (
    <div data-testid="proof" data-verified={String(matches)}>
      <p className={matches ? 'ok' : 'warn'}>
        {matches
          ? `✓ TaskSettled: ${event.valCorrect}/${event.valCount} correct, as listed.`
          : '✗ The chain records different metrics than the coordinator lists.'}
      </p>
      <dl className="facts">
        <dt>Block</dt>
        <dd>{event.blockNumber.toString()}</dd>
        <dt>Transaction</dt>
        <dd>
          <TxHash hash={event.txHash} />
        </dd>
        <dt>Result digest</dt>
        <dd>
          <code title={event.digest}>{shortHex(event.digest)}</code>
        </dd>
        <dt>Majority</dt>
        <dd>
          {plural(event.winners.length, 'worker')}
          {event.dissenters.length > 0 ? `, ${plural(event.dissenters.length, 'dissent')}` : ''}
        </dd>
      </dl>
    </div>
  );
}

/** Input features per example: an MLP's `inputs`, a conv model's channels × height × width. */
function inputFeatures(spec: AnyTaskSpec): number {
  if (!isV2(spec)) return spec.model.inputs;
  const { channels, height, width } = spec.model.input;
  return channels * height * width;
}

type ExportState =
  | { status: 'idle' }
  | { status: 'training'; step: number; steps: number }
  | { status: 'done'; onnx: Uint8Array; url: string; digest: Hex }
  | { status: 'failed'; error: string };

function ExportAndTry({ model, chainDigest }: { model: RankedModel; chainDigest?: Hex }) {
  const { api } = useApp();
  const info = useInfo();
  const check = useDeviceCheck();
  const spec = model.spec;
  const [state, setState] = useState<ExportState>({ status: 'idle' });
  // One re-training per model, whether the button or the first drawing asks for it.
  const pending = useRef<Promise<Uint8Array>>(undefined);
  if (!spec) return null;

  async function train(): Promise<Uint8Array> {
    if (!spec) throw new Error('no spec');
    setState({ status: 'training', step: 0, steps: spec.training.steps });
    try {
      const backend = votingBackend(check) ?? 'cpu';
      const every = Math.max(1, Math.floor(spec.training.steps / 50));
      const { result, onnx } = await engineWorker().exportOnnx(
        { spec, dataset: datasetSource(info, api.base, spec), backend, progressEvery: every },
        { taskId: model.entry.taskId, architecture: model.label },
        progressProxy((p: { step: number; steps: number }) =>
          setState({ status: 'training', step: p.step, steps: p.steps }),
        ),
      );
      const url = URL.createObjectURL(new Blob([onnx.slice()], { type: 'application/octet-stream' }));
      setState({ status: 'done', onnx, url, digest: result.digest as Hex });
      return onnx;
    } catch (err) {
      pending.current = undefined;
      setState({ status: 'failed', error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }

  /** The model's ONNX, re-trained in this tab on first use (training is bit-exact). */
  function ensureModel(): Promise<Uint8Array> {
    pending.current ??= train();
    return pending.current;
  }

  return (
    <div className="export">
      <h3>Try it</h3>
      <p className="muted small" id="try-hint">
        {inputFeatures(spec) === 784
          ? 'Draw a digit (0–9) in the black box with your mouse, finger or pen; the model guesses it.'
          : 'Draw in the black box; the model classifies your drawing.'}
        {state.status !== 'done' &&
          ' The first guess takes a moment: this tab rebuilds the model by re-training it.'}
      </p>
      <DigitPad model={ensureModel} inputs={inputFeatures(spec)} classes={spec.model.classes} />
      <h3>Model</h3>
      {state.status === 'idle' && (
        <>
          <p className="muted small">
            Training is bit-exact, so this tab can re-train the task, check that it reproduces the digest on
            chain, and export the weights as ONNX.
          </p>
          <button type="button" onClick={() => void ensureModel().catch(() => {})} data-testid="build-onnx">
            Re-train, verify and export ONNX
          </button>
        </>
      )}
      {state.status === 'training' && (
        <div
          role="progressbar"
          aria-label="Re-training"
          aria-valuemin={0}
          aria-valuemax={state.steps}
          aria-valuenow={state.step}
          className="progress"
        >
          <div
            className="progress-fill"
            style={{ width: percent(state.steps ? state.step / state.steps : 0) }}
          />
        </div>
      )}
      {state.status === 'failed' && (
        <p className="warn" role="alert">
          Re-training failed: {state.error}
        </p>
      )}
      {state.status === 'done' && (
        <>
          <p
            className={chainDigest && chainDigest === state.digest ? 'ok' : 'warn'}
            data-testid="reproduced"
            data-match={String(chainDigest === state.digest)}
          >
            {chainDigest === undefined
              ? `Re-trained: digest ${shortHex(state.digest)} (no on-chain digest to compare yet).`
              : chainDigest === state.digest
                ? '✓ Re-trained in this tab: the digest matches the one settled on chain.'
                : `✗ Re-training gave digest ${shortHex(state.digest)}, the chain has ${shortHex(chainDigest)}.`}
          </p>
          <a
            className="button secondary"
            href={state.url}
            download={`cambrian-${model.entry.taskId.slice(2, 10)}.onnx`}
            data-testid="download-onnx"
          >
            Download ONNX ({compactNumber(state.onnx.byteLength)} bytes)
          </a>
        </>
      )}
    </div>
  );
}
