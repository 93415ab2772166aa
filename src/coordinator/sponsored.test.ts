/**
 * A sponsor's search through the HTTP API, on a real anvil: upload a CSV dataset, post a signed
 * manifest over it, open and fund it on chain, let headless workers train it (fetching the dataset by
 * hash), see it settle from its own pool and finish; the sponsor's signed pause, resume and cancel,
 * and the refusals an outsider or a replay gets.
 */
import type { Hex, LocalAccount } from 'viem';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { anvilAccount } from '../chain/accounts.ts';
import { connectChain, type SigningConnection } from '../chain/client.ts';
import { openSearch, searchOf } from '../chain/searches.ts';
import { generateBlobs } from '../data/blobs.ts';
import { decodeDataset } from '../data/format.ts';
import { writeCsv } from '../data/writers.ts';
import type { DatasetUploaded, SearchView } from '../protocol/http.ts';
import {
  manifestHashOf,
  parseManifest,
  randomNonce,
  type SearchActionName,
  type SearchManifestInput,
  searchIdOf,
  signSearchAction,
} from '../protocol/search.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { datasetFit } from './sponsored.ts';
import { startTestChain, type TestChain, trainWithFreshWorkers, until } from './testing.ts';

const REWARD = 2n * 10n ** 14n;
let chain: TestChain;
let db: Db;
let coordinator: Coordinator;
let sponsor: SigningConnection;
let api: string;

beforeAll(async () => {
  chain = await startTestChain();
  db = await openDb({ url: 'memory://' });
  coordinator = await startCoordinator({
    db,
    chain: chain.settings,
    minBond: 0n,
    queue: { stateWaitMs: 0 },
    // The test drives every loop with tick().
    sweepMs: 3_600_000,
    settleMs: 3_600_000,
    searchMs: 3_600_000,
    log: () => {},
  });
  api = `${coordinator.url}/api/v1`;
  sponsor = await connectChain(chain.settings.rpcUrl, anvilAccount(7));
});

afterAll(async () => {
  await coordinator?.close();
  await db?.close();
  await chain?.stop();
});

/** The first 400 blobs as a CSV with the label last, in a column named "kind". */
function blobsCsv(): Uint8Array {
  const blobs = decodeDataset('blobs', generateBlobs());
  const n = 400;
  return writeCsv(
    blobs.features,
    blobs.pixels.subarray(0, n * blobs.features),
    blobs.labels.subarray(0, n),
    'kind',
  );
}

async function upload(csv: Uint8Array, name = 'toy-blobs'): Promise<Response> {
  const form = new FormData();
  form.set('format', 'csv');
  form.set('name', name);
  form.set('labelColumn', 'kind');
  form.set('csv', new Blob([csv as Uint8Array<ArrayBuffer>]), 'blobs.csv');
  return fetch(`${api}/datasets`, { method: 'POST', body: form });
}

const post = (path: string, body: unknown) =>
  fetch(`${api}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function signed(signer: LocalAccount, searchId: Hex, action: SearchActionName, manifestHash: Hex) {
  const nonce = randomNonce();
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 300);
  const signature = await signSearchAction(signer, coordinator.domain, {
    searchId,
    action,
    manifestHash,
    nonce,
    expiresAt,
  });
  return { nonce: nonce.toString(), expiresAt: Number(expiresAt), signature };
}

async function postSearch(
  manifestInput: SearchManifestInput,
  signer = sponsor.wallet.account as LocalAccount,
) {
  const manifest = parseManifest(manifestInput);
  const manifestHash = manifestHashOf(manifest);
  const address = sponsor.wallet.account.address;
  const searchId = searchIdOf(address, manifestHash);
  const body = { manifest, sponsor: address, ...(await signed(signer, searchId, 'post', manifestHash)) };
  return { searchId, manifestHash, body, response: await post('/searches', body) };
}

async function view(searchId: Hex): Promise<SearchView> {
  return (await (await fetch(`${api}/searches/${searchId}`)).json()) as SearchView;
}

let dataset: DatasetUploaded;
const manifestOf = (name: string, budget: number): SearchManifestInput => ({
  v: 1,
  name,
  dataset: { name: dataset.name, sha256: dataset.sha256 },
  validation: 100,
  splitSeed: 1,
  family: 'mlp',
  maxParams: 20_000,
  strategy: { kind: 'random', seed: 11, budget, steps: 3 },
  rewardWei: REWARD.toString(),
});

it('takes a CSV upload, stores it content-addressed and names a bad row', async () => {
  const res = await upload(blobsCsv());
  expect(res.status).toBe(201);
  dataset = (await res.json()) as DatasetUploaded;
  expect(dataset).toMatchObject({ name: 'toy-blobs', count: 400, features: 64, classes: 4 });
  expect(dataset.classCounts.reduce((a, b) => a + b, 0)).toBe(400);
  const bytes = new Uint8Array(await (await fetch(`${coordinator.url}${dataset.url}`)).arrayBuffer());
  expect(decodeDataset('toy-blobs', bytes, dataset.sha256).count).toBe(400);

  const bad = await upload(new TextEncoder().encode('a,b,kind\n1,2,0\n3,oops,1\n'), 'bad');
  expect(bad.status).toBe(422);
  expect(((await bad.json()) as { error: string }).error).toBe(
    "CSV row 3, column 'b': 'oops' is not a number",
  );
  expect((await upload(blobsCsv(), 'mnist')).status).toBe(400);
});

it('refuses posts an outsider, a replay or a misfit sends, and writes nothing for them', async () => {
  const stranger = anvilAccount(5);
  const forged = await postSearch(manifestOf('forged', 2), stranger);
  expect(forged.response.status).toBe(403);
  // Refused on the manifest alone, before its signature is even looked at.
  const big = {
    ...manifestOf('too big', 2),
    maxParams: 1_000_000,
    strategy: { kind: 'random', seed: 1, budget: 2, steps: 2000 },
  };
  const tooBig = await post('/searches', { ...forged.body, manifest: big });
  expect(tooBig.status).toBe(400);
  expect(((await tooBig.json()) as { error: string }).error).toMatch(
    /manifest: strategy.steps: .*training MACs/,
  );
  const leaky = await postSearch({ ...manifestOf('all validation', 2), validation: 399 });
  expect(leaky.response.status).toBe(422);
  const unknown = await postSearch({
    ...manifestOf('no data', 2),
    dataset: { name: 'nothing', sha256: `0x${'12'.repeat(32)}` },
  });
  expect(((await unknown.response.json()) as { error: string }).error).toMatch(/not uploaded here/);
  expect(((await (await fetch(`${api}/searches`)).json()) as { searches: unknown[] }).searches).toEqual([]);
});

it('runs a posted search once funded on chain, pays its tasks from its pool, and finishes', async () => {
  const { searchId, body, response } = await postSearch(manifestOf('toy blobs', 2));
  expect(response.status).toBe(201);
  expect(((await response.json()) as SearchView).state).toBe('funding');
  expect((await post('/searches', body)).status).toBe(409); // the same signed post again

  await coordinator.tick();
  expect(await view(searchId)).toMatchObject({ state: 'funding', error: 'not opened on chain yet' });
  await openSearch(sponsor, chain.settings.settlement, searchId, {
    rewardPerTask: REWARD,
    fund: 10n * REWARD,
  });
  await coordinator.tick(); // the funds loop: running
  await coordinator.tick(); // the runner proposes its tasks
  expect(await view(searchId)).toMatchObject({ state: 'running', tasks: { open: 2 } });

  await trainWithFreshWorkers(coordinator.url, 2, 2);
  const done = await until('the search settled and finished', async () => {
    await coordinator.tick();
    const v = await view(searchId);
    return v.state === 'finished' && v;
  });
  expect(done).toMatchObject({ tasks: { settled: 2 }, spentWei: (2n * REWARD).toString() });
  expect(done.bestAccuracy).toBeGreaterThan(0);
  expect((await searchOf(sponsor.publicClient, chain.settings.settlement, searchId))?.pool).toBe(8n * REWARD);
  const board = (await (await fetch(`${api}/leaderboard?search=${searchId}`)).json()) as unknown[];
  expect(board).toHaveLength(2);
  expect(await (await fetch(`${api}/leaderboard`)).json()).toEqual([]); // the operator's search is apart
  const progress = (await (await fetch(`${api}/search?search=${searchId}`)).json()) as { tasks: object };
  expect(progress.tasks).toEqual({ settled: 2 });
});

it("moves a search only on its sponsor's signed, fresh actions", async () => {
  const { searchId, manifestHash, response } = await postSearch(manifestOf('paused later', 3));
  expect(response.status).toBe(201);
  await openSearch(sponsor, chain.settings.settlement, searchId, {
    rewardPerTask: REWARD,
    fund: 10n * REWARD,
  });
  await coordinator.tick();
  expect((await view(searchId)).state).toBe('running');

  const me = sponsor.wallet.account as LocalAccount;
  const act = async (action: 'pause' | 'resume' | 'cancel', signer = me) => {
    const body = { action, ...(await signed(signer, searchId, action, manifestHash)) };
    return { body, res: await post(`/searches/${searchId}/actions`, body) };
  };
  expect((await act('pause', anvilAccount(5))).res.status).toBe(403);
  const paused = await act('pause');
  expect(paused.res.status).toBe(200);
  expect(((await paused.res.json()) as SearchView).state).toBe('paused');
  expect((await post(`/searches/${searchId}/actions`, paused.body)).status).toBe(409); // replayed
  expect(((await (await act('resume')).res.json()) as SearchView).state).toBe('running');
  expect(((await (await act('cancel')).res.json()) as SearchView).state).toBe('cancelled');
  const late = await act('resume');
  expect(late.res.status).toBe(409);
  expect(((await late.res.json()) as { error: string }).error).toBe(
    'a cancelled search cannot become running',
  );
});

it('refuses a split whose validation examples are copies of training examples', () => {
  const blobs = decodeDataset('blobs', generateBlobs());
  const m = parseManifest({
    v: 1,
    name: 'leaky',
    dataset: { name: 'toy', sha256: blobs.sha256 },
    validation: 100,
    splitSeed: 1,
    family: 'mlp',
    maxParams: 20_000,
    strategy: { kind: 'random', seed: 1, budget: 2, steps: 3 },
    rewardWei: '1',
  });
  expect(datasetFit(m, blobs)).toBeUndefined();
  // Every example twice: half the validation part has its twin in the training part.
  const doubled = {
    ...blobs,
    count: blobs.count * 2,
    pixels: new Uint8Array([...blobs.pixels, ...blobs.pixels]),
    labels: new Uint8Array([...blobs.labels, ...blobs.labels]),
  };
  expect(datasetFit(m, doubled)).toMatch(
    /^dataset: \d+ of 100 validation examples also appear in the training part/,
  );
  expect(
    datasetFit(parseManifest({ ...m, family: 'cnn', input: { channels: 1, height: 8, width: 9 } }), blobs),
  ).toBe('input: 1×8×9 = 72 features, the dataset has 64');
});
