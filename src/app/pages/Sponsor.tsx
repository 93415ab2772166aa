/**
 * Sponsor: bring a dataset, post a search over it, fund it on chain, and follow every search
 * (docs/SPONSORS.md). The data is checked in the tab first (the same import the coordinator runs:
 * counts, class balance, a few examples), then uploaded; the manifest is signed by the wallet
 * (EIP-712 SearchAction), and the pool funded with one openSearch transaction.
 */
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { type Address, type Hex, parseEther } from 'viem';
import { useConnection, useSignTypedData, useWaitForTransactionReceipt, useWriteContract } from 'wagmi';
import {
  DATASET_FORMATS,
  type DatasetFormat,
  type ImportedDataset,
  importDataset,
} from '../../data/import.ts';
import { cambrianDomain } from '../../protocol/eip712.ts';
import type { DatasetUploaded, SearchView } from '../../protocol/http.ts';
import {
  manifestHashOf,
  maxSpendOf,
  parseManifest,
  randomNonce,
  type SearchActionName,
  type SearchManifest,
  SPONSOR_LIMITS,
  searchActionTypedData,
  searchIdOf,
} from '../../protocol/search.ts';
import { TxHash } from '../components/TxHash.tsx';
import { settlementAbi } from '../lib/chain.ts';
import { useApp, useInfo } from '../lib/context.ts';
import { formatBytes, formatEth, percent, shortHex } from '../lib/format.ts';

const FORMAT_FILES: Record<DatasetFormat, { field: string; label: string }[]> = {
  csv: [{ field: 'csv', label: 'CSV file (header row, one example per row)' }],
  idx: [
    { field: 'images', label: 'Images (IDX, e.g. train-images-idx3-ubyte)' },
    { field: 'labels', label: 'Labels (IDX, e.g. train-labels-idx1-ubyte)' },
  ],
  npy: [
    { field: 'features', label: 'Features (.npy, N × …)' },
    { field: 'labels', label: 'Labels (.npy, N)' },
  ],
};
const FORMAT_NAMES: Record<DatasetFormat, string> = {
  csv: 'CSV',
  idx: 'IDX (as MNIST ships)',
  npy: 'NumPy .npy pair',
};

export function SponsorPage() {
  const [dataset, setDataset] = useState<DatasetUploaded>();
  return (
    <>
      <section className="card" aria-labelledby="sponsor-title">
        <h2 id="sponsor-title">Sponsor a search</h2>
        <p className="muted">
          Bring a labelled dataset, choose what to search and what to pay per trained architecture, and fund
          it from your wallet. Volunteers train its tasks; each settled task is paid from your search's own
          pool.
        </p>
        <DatasetStep onUploaded={setDataset} />
        {dataset && <SearchStep dataset={dataset} />}
      </section>
      <SearchesList />
    </>
  );
}

function DatasetStep({ onUploaded }: { onUploaded: (d: DatasetUploaded) => void }) {
  const { api } = useApp();
  const [format, setFormat] = useState<DatasetFormat>('csv');
  const [name, setName] = useState('');
  const [labelColumn, setLabelColumn] = useState('label');
  const [files, setFiles] = useState<Record<string, File>>({});
  const [checked, setChecked] = useState<ImportedDataset>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState<'checking' | 'uploading'>();
  const [uploaded, setUploaded] = useState<DatasetUploaded>();
  const needed = FORMAT_FILES[format];
  const complete = needed.every((f) => files[f.field]);

  async function check() {
    setError(undefined);
    setChecked(undefined);
    setBusy('checking');
    try {
      const bytes = async (field: string) => new Uint8Array(await files[field].arrayBuffer());
      const upload =
        format === 'csv'
          ? { format, csv: await bytes('csv'), labelColumn }
          : format === 'idx'
            ? { format, images: await bytes('images'), labels: await bytes('labels') }
            : { format, features: await bytes('features'), labels: await bytes('labels') };
      setChecked(importDataset(upload));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
    }
  }

  async function upload() {
    setError(undefined);
    setBusy('uploading');
    try {
      const form = new FormData();
      form.set('format', format);
      form.set('name', name.trim());
      if (format === 'csv') form.set('labelColumn', labelColumn);
      for (const f of needed) form.set(f.field, files[f.field]);
      const done = await api.uploadDataset(form);
      setUploaded(done);
      onUploaded(done);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
    }
  }

  return (
    <div className="step" data-testid="dataset-step">
      <h3>1. Your data</h3>
      <p className="note" role="note" data-testid="privacy-note">
        <strong>Your dataset is public to the workers.</strong> Every volunteer who trains your search
        downloads it whole. Upload nothing you would not publish. At most{' '}
        {formatBytes(SPONSOR_LIMITS.maxUploadBytes)} per upload, {SPONSOR_LIMITS.maxExamples.toLocaleString()}{' '}
        examples, {SPONSOR_LIMITS.maxClasses} classes.
      </p>
      <div className="form-grid">
        <label>
          Format{' '}
          <select
            value={format}
            onChange={(e) => {
              setFormat(e.target.value as DatasetFormat);
              setFiles({});
              setChecked(undefined);
            }}
            data-testid="dataset-format"
          >
            {DATASET_FORMATS.map((f) => (
              <option key={f} value={f}>
                {FORMAT_NAMES[f]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name (lowercase, digits, . _ -){' '}
          <input value={name} onChange={(e) => setName(e.target.value)} data-testid="dataset-name" />
        </label>
        {format === 'csv' && (
          <label>
            Label column{' '}
            <input
              value={labelColumn}
              onChange={(e) => setLabelColumn(e.target.value)}
              data-testid="label-column"
            />
          </label>
        )}
        {needed.map((f) => (
          <label key={`${format}-${f.field}`}>
            {f.label}{' '}
            <input
              type="file"
              onChange={(e) => {
                const file = e.target.files?.[0];
                setChecked(undefined);
                setFiles((prev) => {
                  const next = { ...prev };
                  if (file) next[f.field] = file;
                  else delete next[f.field];
                  return next;
                });
              }}
              data-testid={`file-${f.field}`}
            />
          </label>
        ))}
      </div>
      <div className="row">
        <button
          type="button"
          disabled={!complete || busy !== undefined}
          onClick={check}
          data-testid="dataset-check"
        >
          {busy === 'checking' ? 'Checking…' : 'Check the data'}
        </button>
        <button
          type="button"
          disabled={!checked || !name.trim() || busy !== undefined}
          onClick={upload}
          data-testid="dataset-upload"
        >
          {busy === 'uploading' ? 'Uploading…' : 'Upload'}
        </button>
      </div>
      {error && (
        <p className="warn" role="alert" data-testid="dataset-error">
          {error}
        </p>
      )}
      {checked && <DatasetPreview dataset={checked} />}
      {uploaded && (
        <p role="status" data-testid="dataset-uploaded">
          Uploaded as <code title={uploaded.sha256}>{shortHex(uploaded.sha256)}</code> (
          {formatBytes(uploaded.bytes)}
          ).
        </p>
      )}
    </div>
  );
}

function DatasetPreview({ dataset }: { dataset: ImportedDataset }) {
  const image = imageShape(dataset.shape);
  const examples = Math.min(8, dataset.count);
  return (
    <div data-testid="dataset-preview">
      <p>
        {dataset.count.toLocaleString()} examples, {dataset.features.toLocaleString()} features
        {dataset.shape.length > 1 ? ` (${dataset.shape.join(' × ')})` : ''}, {dataset.classes} classes
        {dataset.scaling ? '; features scaled to 0…255 per column' : ''}
        {dataset.duplicates.count > 0 ? `; ${dataset.duplicates.count} duplicate examples` : ''}.
      </p>
      <table className="compact" data-testid="class-counts">
        <caption className="muted small">Examples per class</caption>
        <thead>
          <tr>
            <th scope="col">class</th>
            <th scope="col">examples</th>
          </tr>
        </thead>
        <tbody>
          {dataset.classCounts.map((n, c) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the class number is the index
            <tr key={c}>
              <td>{dataset.labelNames?.[c] ?? c}</td>
              <td>{n.toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ul className="examples" aria-label="The first examples">
        {Array.from({ length: examples }, (_, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: examples are shown in dataset order
          <li key={i}>
            <figure>
              {image ? (
                <ExampleImage dataset={dataset} index={i} shape={image} />
              ) : (
                <code className="small">
                  {Array.from(exampleFeatures(dataset, i).slice(0, 6)).join(' ')}…
                </code>
              )}
              <figcaption className="small">
                class {dataset.labelNames?.[labelOf(dataset, i)] ?? labelOf(dataset, i)}
              </figcaption>
            </figure>
          </li>
        ))}
      </ul>
    </div>
  );
}

function imageShape(shape: number[]): { height: number; width: number } | undefined {
  if (shape.length === 2) return { height: shape[0], width: shape[1] };
  if (shape.length === 3 && shape[0] <= 4) return { height: shape[1], width: shape[2] };
  return undefined;
}

const exampleFeatures = (d: ImportedDataset, i: number) =>
  d.bytes.subarray(16 + i * d.features, 16 + (i + 1) * d.features);
const labelOf = (d: ImportedDataset, i: number) => d.bytes[16 + d.count * d.features + i];

function ExampleImage(props: {
  dataset: ImportedDataset;
  index: number;
  shape: { height: number; width: number };
}) {
  const ref = useRef<HTMLCanvasElement>(null);
  const { height, width } = props.shape;
  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    const pixels = exampleFeatures(props.dataset, props.index);
    const img = ctx.createImageData(width, height);
    for (let p = 0; p < width * height; p++) {
      img.data.set([pixels[p], pixels[p], pixels[p], 255], p * 4);
    }
    ctx.putImageData(img, 0, 0);
  }, [props.dataset, props.index, height, width]);
  return (
    <canvas
      ref={ref}
      width={width}
      height={height}
      className="example"
      role="img"
      aria-label={`example ${props.index + 1}, first channel`}
    />
  );
}

function SearchStep({ dataset }: { dataset: DatasetUploaded }) {
  const { api } = useApp();
  const info = useInfo();
  const connection = useConnection();
  const sign = useSignTypedData();
  const fund = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: fund.data });
  const shape = (dataset.source.shape as number[] | undefined) ?? [dataset.features];
  const image = imageShape(shape);
  const [form, setForm] = useState({
    name: `${dataset.name} search`,
    family: 'mlp' as 'mlp' | 'cnn',
    budget: '40',
    steps: '100',
    reward: '0.001',
    validation: String(Math.max(1, Math.round(dataset.count * 0.2))),
    strategy: 'evolution' as 'evolution' | 'random',
  });
  const [posted, setPosted] = useState<{ view: SearchView; manifest: SearchManifest }>();
  // One salt per form: the same choices posted twice are two searches only if asked twice.
  const [salt] = useState(() => Math.floor(Math.random() * 2 ** 32));
  const [error, setError] = useState<string>();
  const set = (key: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [key]: e.target.value }));

  let manifest: SearchManifest | undefined;
  let problem: string | undefined;
  try {
    manifest = parseManifest({
      v: 1,
      name: form.name,
      dataset: { name: dataset.name, sha256: dataset.sha256 },
      validation: Number(form.validation),
      splitSeed: 1,
      family: form.family,
      input:
        form.family === 'cnn' && image
          ? { channels: shape.length === 3 ? shape[0] : 1, ...image }
          : undefined,
      maxParams: form.family === 'cnn' ? 100_000 : 250_000,
      strategy: {
        kind: form.strategy,
        seed: 1,
        budget: Number(form.budget),
        steps: Number(form.steps),
      },
      rewardWei: rewardWei(form.reward),
      salt,
    });
  } catch (err) {
    problem = err instanceof Error ? firstIssue(err) : String(err);
  }
  const total = manifest ? maxSpendOf(manifest) : undefined;

  async function post() {
    if (!manifest || !connection.address) return;
    setError(undefined);
    try {
      const manifestHash = manifestHashOf(manifest);
      const searchId = searchIdOf(connection.address, manifestHash);
      const signed = await signAction(sign.mutateAsync, info, { searchId, action: 'post', manifestHash });
      const view = await api.postSearch({ manifest, sponsor: connection.address, ...signed });
      setPosted({ view, manifest });
    } catch (err) {
      setError(err instanceof Error ? err.message.split('\n')[0] : String(err));
    }
  }

  function openOnChain() {
    if (!posted) return;
    const reward = BigInt(posted.manifest.rewardWei);
    fund.mutate({
      address: info.settlement as Address,
      abi: settlementAbi,
      functionName: 'openSearch',
      args: [posted.view.searchId as Hex, reward, reward * 1000n],
      value: maxSpendOf(posted.manifest),
    });
  }

  return (
    <div className="step" data-testid="search-step">
      <h3>2. The search</h3>
      <div className="form-grid">
        <label>
          Name <input value={form.name} onChange={set('name')} data-testid="search-name" />
        </label>
        <label>
          Architectures{' '}
          <select value={form.family} onChange={set('family')} data-testid="search-family">
            <option value="mlp">dense nets (MLP)</option>
            <option value="cnn" disabled={!image}>
              conv nets{image ? '' : ' (needs image-shaped data)'}
            </option>
          </select>
        </label>
        <label>
          Strategy{' '}
          <select value={form.strategy} onChange={set('strategy')} data-testid="search-strategy">
            <option value="evolution">regularized evolution</option>
            <option value="random">random search</option>
          </select>
        </label>
        <label>
          Architectures to train (tasks){' '}
          <input
            inputMode="numeric"
            value={form.budget}
            onChange={set('budget')}
            data-testid="search-budget"
          />
        </label>
        <label>
          Training steps per task{' '}
          <input inputMode="numeric" value={form.steps} onChange={set('steps')} data-testid="search-steps" />
        </label>
        <label>
          Validation examples{' '}
          <input
            inputMode="numeric"
            value={form.validation}
            onChange={set('validation')}
            data-testid="search-validation"
          />
        </label>
        <label>
          Reward per task (ETH){' '}
          <input
            inputMode="decimal"
            value={form.reward}
            onChange={set('reward')}
            data-testid="search-reward"
          />
        </label>
      </div>
      <p data-testid="search-cost">
        {total !== undefined ? (
          <>
            Total: <strong>{formatEth(total)} ETH</strong> ({form.budget} tasks × {form.reward} ETH), paid
            into your search's pool; what is not spent you can withdraw after closing it. Gas is extra.
          </>
        ) : (
          <span className="warn">{problem}</span>
        )}
      </p>
      {!posted ? (
        <button
          type="button"
          disabled={!manifest || !connection.address || sign.isPending}
          onClick={post}
          data-testid="search-post"
        >
          {!connection.address
            ? 'Connect a wallet to post'
            : sign.isPending
              ? 'Sign in your wallet…'
              : 'Sign and post'}
        </button>
      ) : (
        <div className="row">
          <p role="status">
            Posted as <code title={posted.view.searchId}>{shortHex(posted.view.searchId)}</code>: now fund it.
          </p>
          <button
            type="button"
            disabled={fund.isPending || receipt.isLoading || receipt.status === 'success'}
            onClick={openOnChain}
            data-testid="search-fund"
          >
            {receipt.status === 'success' ? 'Funded' : `Fund ${formatEth(maxSpendOf(posted.manifest))} ETH`}
          </button>
        </div>
      )}
      <p className="muted small" role="status" aria-live="polite" data-testid="search-status">
        {error ? (
          <span className="warn">{error}</span>
        ) : fund.error ? (
          <span className="warn">Funding failed: {fund.error.message.split('\n')[0]}</span>
        ) : fund.data ? (
          <>
            {receipt.status === 'success' ? 'Funded in ' : 'Waiting for '}
            <TxHash hash={fund.data} />
          </>
        ) : fund.isPending ? (
          'Confirm in your wallet…'
        ) : (
          ''
        )}
      </p>
    </div>
  );
}

/** The wallet signs one SearchAction, fresh nonce, ten minutes to use it: the body fields the API takes. */
async function signAction(
  signTyped: (typed: ReturnType<typeof searchActionTypedData>) => Promise<Hex>,
  info: { chainId: number; settlement: string },
  action: { searchId: Hex; action: SearchActionName; manifestHash: Hex },
): Promise<{ nonce: string; expiresAt: number; signature: Hex }> {
  const nonce = randomNonce();
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 600);
  const domain = cambrianDomain(info.chainId, info.settlement as Address);
  const signature = await signTyped(searchActionTypedData(domain, { ...action, nonce, expiresAt }));
  return { nonce: nonce.toString(), expiresAt: Number(expiresAt), signature };
}

function rewardWei(text: string): string {
  try {
    return parseEther(text.trim()).toString();
  } catch {
    return 'not an amount';
  }
}

function firstIssue(err: Error): string {
  const issues = (err as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
  if (!issues?.length) return err.message;
  const [i] = issues;
  const field: Record<string, string> = {
    rewardWei: 'Reward per task',
    'strategy.budget': 'Tasks',
    'strategy.steps': 'Training steps',
    validation: 'Validation examples',
    name: 'Name',
  };
  return `${field[i.path.join('.')] ?? i.path.join('.')}: ${i.message}`;
}

/** Every search, the connected wallet's with its controls. */
function SearchesList() {
  const { api } = useApp();
  const connection = useConnection();
  const searches = useQuery({ queryKey: ['searches'], queryFn: () => api.searches(), refetchInterval: 4000 });
  const me = connection.address?.toLowerCase();
  const list = searches.data ?? [];
  return (
    <section className="card" aria-labelledby="searches-title">
      <h2 id="searches-title">Searches</h2>
      {searches.error && (
        <p className="warn" role="alert">
          Could not load the searches: {String(searches.error)}
        </p>
      )}
      {list.length === 0 && !searches.isLoading && <p className="muted">No search has been posted yet.</p>}
      <ul className="searches" data-testid="searches">
        {list.map((s) => (
          <li key={s.searchId} data-testid="search-card" data-state={s.state}>
            <SearchCard search={s} mine={s.sponsor.toLowerCase() === me} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function SearchCard({ search: s, mine }: { search: SearchView; mine: boolean }) {
  const { api } = useApp();
  const info = useInfo();
  const sign = useSignTypedData();
  const chainWrite = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: chainWrite.data });
  const [error, setError] = useState<string>();
  const board = useQuery({
    queryKey: ['search-board', s.searchId, s.tasks.settled ?? 0],
    queryFn: () => api.searchLeaderboard(s.searchId),
    enabled: (s.tasks.settled ?? 0) > 0,
  });
  const settled = s.tasks.settled ?? 0;

  async function act(action: Exclude<SearchActionName, 'post'>) {
    setError(undefined);
    try {
      const signed = await signAction(sign.mutateAsync, info, {
        searchId: s.searchId as Hex,
        action,
        manifestHash: s.manifestHash as Hex,
      });
      await api.searchAction(s.searchId, { action, ...signed });
    } catch (err) {
      setError(err instanceof Error ? err.message.split('\n')[0] : String(err));
    }
  }

  const onChain = (functionName: 'closeSearch' | 'withdrawSearch') =>
    chainWrite.mutate({
      address: info.settlement as Address,
      abi: settlementAbi,
      functionName,
      args: functionName === 'closeSearch' ? [s.searchId as Hex] : [s.searchId as Hex, BigInt(s.poolWei)],
    } as never);

  return (
    <article aria-label={s.name}>
      <h3>
        {s.name}{' '}
        <span className="badge" data-testid="search-state">
          {s.state}
        </span>
      </h3>
      <p className="muted small">
        by <code title={s.sponsor}>{shortHex(s.sponsor)}</code> · pays {formatEth(BigInt(s.rewardWei))} ETH
        per task · data {s.dataset.name}
      </p>
      <label className="progress-label">
        {settled} of {s.budgetTasks} tasks settled
        <progress max={s.budgetTasks} value={settled} />
      </label>
      <dl className="facts">
        <dt>Spent</dt>
        <dd data-testid="search-spent">
          {formatEth(BigInt(s.spentWei))} of {formatEth(BigInt(s.maxSpendWei))} ETH
        </dd>
        <dt>Pool on chain</dt>
        <dd>
          {formatEth(BigInt(s.poolWei))} ETH ({s.chainState})
        </dd>
        <dt>Best accuracy</dt>
        <dd data-testid="search-best">{s.bestAccuracy == null ? '—' : percent(s.bestAccuracy)}</dd>
      </dl>
      {s.error && <p className="warn small">Waiting: {s.error}</p>}
      {board.data && board.data.length > 0 && (
        <table className="compact" data-testid="search-board">
          <caption className="muted small">Best architectures</caption>
          <thead>
            <tr>
              <th scope="col">rank</th>
              <th scope="col">accuracy</th>
              <th scope="col">parameters</th>
              <th scope="col">verified by</th>
            </tr>
          </thead>
          <tbody>
            {board.data.slice(0, 5).map((e, i) => (
              <tr key={e.taskId}>
                <td>{i + 1}</td>
                <td>{percent(e.valCorrect / e.valCount, 2)}</td>
                <td>{e.params?.toLocaleString() ?? '—'}</td>
                <td>{e.verification ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {mine && (
        <div className="row" data-testid="search-controls">
          {s.state === 'running' && (
            <button
              type="button"
              className="secondary"
              onClick={() => act('pause')}
              disabled={sign.isPending}
            >
              Pause
            </button>
          )}
          {s.state === 'paused' && s.chainState !== 'closed' && (
            <button
              type="button"
              className="secondary"
              onClick={() => act('resume')}
              disabled={sign.isPending}
            >
              Resume
            </button>
          )}
          {['funding', 'running', 'paused'].includes(s.state) && (
            <button
              type="button"
              className="secondary"
              onClick={() => act('cancel')}
              disabled={sign.isPending}
              data-testid="search-cancel"
            >
              Cancel
            </button>
          )}
          {s.chainState === 'open' && (
            <button
              type="button"
              className="secondary"
              onClick={() => onChain('closeSearch')}
              disabled={chainWrite.isPending}
              data-testid="search-close"
            >
              Close on chain
            </button>
          )}
          {s.chainState === 'closed' && BigInt(s.poolWei) > 0n && (
            <button
              type="button"
              onClick={() => onChain('withdrawSearch')}
              disabled={chainWrite.isPending}
              data-testid="search-withdraw"
            >
              Withdraw {formatEth(BigInt(s.poolWei))} ETH
            </button>
          )}
        </div>
      )}
      <p className="muted small" role="status" aria-live="polite">
        {error ? (
          <span className="warn">{error}</span>
        ) : chainWrite.error ? (
          <span className="warn">{chainWrite.error.message.split('\n')[0]}</span>
        ) : chainWrite.data ? (
          <>
            {receipt.status === 'success' ? 'Done in ' : 'Waiting for '}
            <TxHash hash={chainWrite.data} />
          </>
        ) : (
          ''
        )}
      </p>
    </article>
  );
}
