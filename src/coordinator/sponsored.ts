/**
 * Sponsors' searches (docs/SPONSORS.md): posting one (a signed manifest over an uploaded dataset),
 * the sponsor's signed actions (pause, resume, cancel), and the runner that drives every running
 * search's strategy (./search.ts, one SearchDriver per search, each under its own lock).
 *
 * A post is checked whole before anything is written: the signature is the sponsor's, the manifest
 * parses within SPONSOR_LIMITS, the dataset is here and fits the manifest (features, classes, a
 * training part with every class, no validation example copied from the training part), and its
 * search space has at least one architecture. Then the row, the nonce and the dataset's claim are
 * written in one transaction: never half a search.
 */
import type { Address, Hex } from 'viem';
import { DATASETS, isDatasetName } from '../data/catalog.ts';
import { decodeDataset } from '../data/format.ts';
import { rowKey } from '../data/import.ts';
import { loadDataset } from '../data/node.ts';
import { splitIndices } from '../engine/plan.ts';
import type { Dataset } from '../engine/types.ts';
import { spaceOf, type Track } from '../nas/tracks.ts';
import type { CambrianDomain } from '../protocol/eip712.ts';
import type { SearchActionRequest, SearchPost } from '../protocol/http.ts';
import {
  DEFAULT_SEARCH_MAX_MACS,
  MAX_ACTION_LIFETIME_S,
  manifestHashOf,
  maxSpendOf,
  recoverSearchActionSigner,
  type SearchActionName,
  type SearchManifest,
  SearchManifestSchema,
  searchIdOf,
} from '../protocol/search.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';
import { claimDataset, ensureLocalDataset, storedDatasetBytes } from './datasets.ts';
import type { Db, Queryable } from './db.ts';
import { Refusal, zodReason } from './errors.ts';
import { type SearchConfig, SearchDriver } from './search.ts';
import {
  insertSearch,
  moveSearch,
  SEARCH_COLUMNS,
  type SearchRow,
  type SearchState,
  searchRow,
} from './searches.ts';
import type { Store } from './store.ts';

/** Validation examples that may equal a training example before the split counts as leaking. */
export const MAX_LEAKED_FRACTION = 0.01;
/** Tasks a sponsored search keeps open at a time. */
export const SPONSORED_QUEUE_DEPTH = 8;

/** A sponsored search as a track (src/nas/tracks.ts): its dataset, split and search space. */
export function trackOfManifest(m: SearchManifest, dataset: Pick<Dataset, 'features' | 'classes'>): Track {
  return {
    id: `sponsored:${m.name}`,
    family: m.family,
    name: m.dataset.name,
    sha256: m.dataset.sha256,
    inputs: dataset.features,
    input: m.input,
    classes: dataset.classes,
    validation: m.validation,
    splitSeed: m.splitSeed,
    steps: m.strategy.steps,
    maxParams: m.maxParams,
    maxMacs: m.family === 'cnn' ? (m.maxMacs ?? DEFAULT_SEARCH_MAX_MACS) : undefined,
    description: m.description || m.name,
  };
}

export function searchConfigOf(m: SearchManifest, track: Track): SearchConfig {
  return {
    track,
    strategy: {
      kind: m.strategy.kind,
      seed: m.strategy.seed,
      budget: m.strategy.budget,
      steps: m.strategy.steps,
    },
    maxParams: m.maxParams,
    queueDepth: Math.min(SPONSORED_QUEUE_DEPTH, m.strategy.budget),
  };
}

function parseManifestOrRefuse(raw: unknown): SearchManifest {
  const parsed = SearchManifestSchema.safeParse(raw);
  if (!parsed.success) throw new Refusal(400, `manifest: ${zodReason(parsed.error)}`);
  return parsed.data;
}

function checkExpiry(expiresAt: number, now = Date.now()) {
  const s = now / 1000;
  if (expiresAt <= s) throw new Refusal(400, 'the signed action has expired');
  if (expiresAt > s + MAX_ACTION_LIFETIME_S + 60)
    throw new Refusal(400, `a signed action may live at most ${MAX_ACTION_LIFETIME_S} s`);
}

/** Remembers a sponsor's nonce until its signature expires; a second use is refused. */
async function useNonce(q: Queryable, sponsor: string, nonce: string, expiresAt: number, now = Date.now()) {
  await q.query('DELETE FROM search_nonces WHERE expires_at < $1', [now]);
  const rows = await q.query(
    `INSERT INTO search_nonces (sponsor, nonce, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING RETURNING 1`,
    [sponsor.toLowerCase(), nonce, expiresAt * 1000],
  );
  if (rows.length === 0) throw new Refusal(409, 'this nonce was used already: sign the action again');
}

async function checkSigner(
  domain: CambrianDomain,
  action: { searchId: Hex; action: SearchActionName; manifestHash: Hex; nonce: string; expiresAt: number },
  signature: Hex,
  sponsor: string,
) {
  const signer = await recoverSearchActionSigner(
    domain,
    { ...action, nonce: BigInt(action.nonce), expiresAt: BigInt(action.expiresAt) },
    signature,
  );
  if (!signer || signer.toLowerCase() !== sponsor.toLowerCase())
    throw new Refusal(403, `the ${action.action} is not signed by the search's sponsor`);
}

/** The dataset a manifest names: a catalog one, or an upload stored here. */
async function manifestDataset(q: Queryable, m: SearchManifest): Promise<Dataset> {
  const { name, sha256 } = m.dataset;
  if (isDatasetName(name)) {
    if (DATASETS[name].sha256 !== sha256)
      throw new Refusal(
        422,
        `dataset: '${name}' is a catalog dataset with sha256 ${DATASETS[name].sha256}; name an upload otherwise`,
      );
    return loadDataset(name, sha256);
  }
  const bytes = await storedDatasetBytes(q, sha256 as Hex);
  if (!bytes) throw new Refusal(422, `dataset: ${sha256} is not uploaded here (POST /datasets first)`);
  return decodeDataset(name, bytes, sha256);
}

/** Why the dataset does not fit the manifest, or nothing. */
export function datasetFit(m: SearchManifest, d: Dataset): string | undefined {
  if (m.input) {
    const { channels, height, width } = m.input;
    if (channels * height * width !== d.features)
      return `input: ${channels}×${height}×${width} = ${channels * height * width} features, the dataset has ${d.features}`;
  }
  const trainCount = d.count - m.validation;
  if (trainCount < d.classes)
    return `validation: ${m.validation} of ${d.count} examples leaves ${Math.max(0, trainCount)} to train on`;
  const { train, validation } = splitIndices(
    { split: { seed: m.splitSeed, validation: m.validation } } as AnyTaskSpec,
    d.count,
  );
  const seen = new Array<number>(d.classes).fill(0);
  for (const i of train) seen[d.labels[i]]++;
  const missing = seen.indexOf(0);
  if (missing >= 0)
    return `validation: the training part has no example of class ${missing} (split seed ${m.splitSeed})`;
  const trainRows = new Map<string, number>();
  for (const i of train) trainRows.set(rowKey(d.pixels, i, d.features), i);
  let leaked = 0;
  let first: [number, number] | undefined;
  for (const i of validation) {
    const twin = trainRows.get(rowKey(d.pixels, i, d.features));
    if (twin === undefined) continue;
    leaked++;
    first ??= [i, twin];
  }
  if (leaked > MAX_LEAKED_FRACTION * m.validation && first)
    return `dataset: ${leaked} of ${m.validation} validation examples also appear in the training part (example ${first[0]} equals ${first[1]}); remove the duplicates`;
  return undefined;
}

/** Posts a search; returns its row (state `funding` until its pool on chain pays a task). */
export async function postSearch(db: Db, domain: CambrianDomain, post: SearchPost): Promise<SearchRow> {
  const manifest = parseManifestOrRefuse(post.manifest);
  const manifestHash = manifestHashOf(manifest);
  const sponsor = post.sponsor.toLowerCase() as Address;
  const searchId = searchIdOf(sponsor, manifestHash);
  checkExpiry(post.expiresAt);
  await checkSigner(
    domain,
    { searchId, action: 'post', manifestHash, nonce: post.nonce, expiresAt: post.expiresAt },
    post.signature,
    sponsor,
  );
  const dataset = await manifestDataset(db, manifest);
  const misfit = datasetFit(manifest, dataset);
  if (misfit) throw new Refusal(422, misfit);
  try {
    spaceOf(trackOfManifest(manifest, dataset));
  } catch (err) {
    throw new Refusal(422, `search space: ${err instanceof Error ? err.message : String(err)}`);
  }
  await db.tx(async (q) => {
    await useNonce(q, sponsor, post.nonce, post.expiresAt);
    const inserted = await insertSearch(q, {
      searchId,
      sponsor,
      manifest,
      manifestHash,
      name: manifest.name,
      datasetSha256: manifest.dataset.sha256 as Hex,
      state: 'funding',
      rewardWei: BigInt(manifest.rewardWei),
      budgetTasks: manifest.strategy.budget,
      maxSpendWei: maxSpendOf(manifest),
    });
    if (!inserted)
      throw new Refusal(409, `search ${searchId} exists already (change its salt to post another)`);
    await claimDataset(q, manifest.dataset.sha256 as Hex);
  });
  return (await searchRow(db, searchId))!;
}

const ACTION_STATE: Record<SearchActionRequest['action'], SearchState> = {
  pause: 'paused',
  resume: 'running',
  cancel: 'cancelled',
};

/** The sponsor's signed pause, resume or cancel. Returns the row after it. */
export async function actOnSearch(
  db: Db,
  domain: CambrianDomain,
  searchId: Hex,
  request: SearchActionRequest,
): Promise<SearchRow> {
  const row = await searchRow(db, searchId);
  if (!row || row.operator) throw new Refusal(404, 'unknown search');
  checkExpiry(request.expiresAt);
  await checkSigner(
    domain,
    {
      searchId,
      action: request.action,
      manifestHash: row.manifest_hash,
      nonce: request.nonce,
      expiresAt: request.expiresAt,
    },
    request.signature,
    row.sponsor,
  );
  if (request.action === 'resume' && row.chain_state === 'closed')
    throw new Refusal(409, 'the search is closed on chain: reopen it there (reopenSearch) before resuming');
  if (request.action === 'resume' && row.state === 'funding')
    throw new Refusal(409, 'the search starts by itself once its pool on chain pays a task');
  await db.tx(async (q) => {
    await useNonce(q, row.sponsor, request.nonce, request.expiresAt);
    await moveSearch(q, searchId, ACTION_STATE[request.action]);
  });
  return (await searchRow(db, searchId))!;
}

/**
 * Drives every running sponsored search's strategy: one SearchDriver per search (its state and lock
 * keyed by the search id), and a search whose strategy has had its whole budget told, with no task
 * left undecided, becomes `finished`. It also keeps each live search's dataset on this machine, where
 * the audits and the referee read it.
 */
export class SponsoredRunner {
  private readonly drivers = new Map<Hex, SearchDriver>();
  private readonly local = new Set<Hex>();

  constructor(
    private readonly db: Db,
    private readonly store: Store,
    private readonly holder: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  driver(searchId: Hex): SearchDriver | undefined {
    return this.drivers.get(searchId);
  }

  /** One pass; returns the tasks added. */
  async tick(): Promise<number> {
    const rows = await this.db.query<SearchRow>(
      `SELECT ${SEARCH_COLUMNS} FROM searches WHERE NOT operator AND state IN ('running', 'paused', 'cancelled')
         AND (state = 'running' OR EXISTS (
           SELECT 1 FROM tasks t WHERE t.search_id = searches.search_id AND t.state NOT IN ('settled', 'failed')))
       ORDER BY seq`,
    );
    let added = 0;
    for (const row of rows) {
      const manifest = SearchManifestSchema.parse(row.manifest);
      if (!this.local.has(row.search_id) && !isDatasetName(manifest.dataset.name)) {
        await ensureLocalDataset(this.db, row.dataset_sha256);
        this.local.add(row.search_id);
      }
      if (row.state !== 'running') continue;
      added += await this.driverFor(row, manifest).then((d) => d.tick());
      await this.finishIfDone(row.search_id);
    }
    return added;
  }

  private async driverFor(row: SearchRow, manifest: SearchManifest): Promise<SearchDriver> {
    let driver = this.drivers.get(row.search_id);
    if (!driver) {
      const dataset = await loadDataset(manifest.dataset.name, manifest.dataset.sha256);
      const config = searchConfigOf(manifest, trackOfManifest(manifest, dataset));
      driver = new SearchDriver(this.db, this.store, config, this.holder, row.search_id);
      this.drivers.set(row.search_id, driver);
    }
    return driver;
  }

  private async finishIfDone(searchId: Hex) {
    const summary = this.drivers.get(searchId)?.summary() as { finished?: boolean } | undefined;
    if (!summary?.finished) return;
    const [{ n }] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE search_id = $1 AND state NOT IN ('settled', 'failed')`,
      [searchId],
    );
    if (n > 0) return;
    await this.db.tx((q) => moveSearch(q, searchId, 'finished'));
    this.store.searchesChanged();
    this.log(`search ${searchId}: its budget is spent and every task decided; finished`);
  }
}
