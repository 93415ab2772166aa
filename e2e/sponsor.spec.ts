/**
 * A sponsor in Chromium against the real stack (anvil, the Settlement contract, the coordinator on
 * PGlite serving the built app, its headless worker): upload a CSV the test generates, check its
 * preview, post a search signed by the wallet, fund it with one transaction, watch the headless
 * workers train and settle it from its own pool on the dashboard, then close it on chain and, after
 * the grace (anvil's clock moved on), withdraw what is left (a second search).
 */
import { expect, test } from '@playwright/test';
import { createPublicClient, createTestClient, type Hex, http } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { anvilAccount } from '../src/chain/accounts.ts';
import { readSettledEvents } from '../src/chain/client.ts';
import { searchOf } from '../src/chain/searches.ts';
import { generateBlobs } from '../src/data/blobs.ts';
import { decodeDataset } from '../src/data/format.ts';
import { writeCsv } from '../src/data/writers.ts';
import { runHeadlessWorker } from '../src/worker/headless/worker.ts';
import { type Stack, startStack } from './stack.ts';
import { connectTestWallet, installTestWallet } from './wallet.ts';

test.describe.configure({ mode: 'serial', timeout: 420_000 });

let stack: Stack;
const sponsor = anvilAccount(6).address;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  stack = await startStack();
});

test.afterAll(async () => {
  await stack?.stop();
});

function blobsCsv(): Buffer {
  const blobs = decodeDataset('blobs', generateBlobs());
  const n = 300;
  return Buffer.from(
    writeCsv(blobs.features, blobs.pixels.subarray(0, n * blobs.features), blobs.labels.subarray(0, n)),
  );
}

test('a sponsor uploads data, posts and funds a search, and sees it settle from its own pool and finish', async ({
  page,
}, testInfo) => {
  await page.addInitScript(installTestWallet, {
    rpcUrl: stack.rpcUrl,
    account: sponsor,
    startChainId: '0x1',
  });
  await page.goto(`${stack.app}/#/contribute`);
  await connectTestWallet(page, sponsor, stack.chainId);
  await page.goto(`${stack.app}/#/sponsor`);
  await expect(page.getByTestId('privacy-note')).toContainText('public to the workers');

  await page.getByTestId('dataset-name').fill('toy-blobs');
  await page
    .getByTestId('file-csv')
    .setInputFiles({ name: 'blobs.csv', mimeType: 'text/csv', buffer: blobsCsv() });
  await page.getByTestId('dataset-check').click();
  await expect(page.getByTestId('dataset-preview')).toContainText('300 examples, 64 features, 4 classes');
  await expect(page.getByTestId('class-counts').locator('tbody tr')).toHaveCount(4);
  await page.getByTestId('dataset-upload').click();
  await expect(page.getByTestId('dataset-uploaded')).toContainText('Uploaded as');

  await page.getByTestId('search-name').fill('Toy blobs, sponsored');
  await page.getByTestId('search-strategy').selectOption('random');
  await page.getByTestId('search-budget').fill('2');
  await page.getByTestId('search-steps').fill('3');
  await page.getByTestId('search-validation').fill('100');
  await page.getByTestId('search-reward').fill('0.002');
  await expect(page.getByTestId('search-cost')).toContainText('Total: 0.004 ETH');
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    await page.screenshot({ path: testInfo.outputPath(`sponsor-form-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByTestId('search-post').click();
  await page.getByTestId('search-fund').click();
  await expect(page.getByTestId('search-status')).toContainText('Funded in', { timeout: 60_000 });

  const card = page.getByTestId('search-card').filter({ hasText: 'Toy blobs, sponsored' });
  await expect(card.getByTestId('search-state')).toHaveText('running', { timeout: 60_000 });
  const searchId = (await (await fetch(`${stack.api}/searches`)).json()).searches[0].searchId as Hex;
  const client = createPublicClient({ transport: http(stack.rpcUrl) });

  // A second headless worker beside the stack's, so each task gets its two votes.
  const stop = new AbortController();
  const helper = runHeadlessWorker({
    coordinator: stack.app,
    account: privateKeyToAccount(generatePrivateKey()),
    backend: 'cpu',
    idleMs: 200,
    stop: stop.signal,
  });
  await expect(card.getByTestId('search-state')).toHaveText('finished', { timeout: 300_000 });
  stop.abort();
  await helper.catch(() => {});
  await expect(card.getByTestId('search-spent')).toContainText('0.004 of 0.004 ETH');
  await expect(card.getByTestId('search-board').locator('tbody tr')).toHaveCount(2);
  expect((await searchOf(client, stack.settlement as Hex, searchId))?.pool).toBe(0n);

  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    // What sticks out, named in the failure.
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('main *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 5)
        .map((e) => `${e.tagName}.${e.className}: ${e.textContent?.slice(0, 40)}`),
    );
    expect(overflow, `sponsor page at ${width} px scrolls sideways: ${wide.join(' | ')}`).toBeLessThanOrEqual(
      1,
    );
    await page.screenshot({ path: testInfo.outputPath(`sponsor-dashboard-${width}.png`), fullPage: true });
  }
  // Its two tasks settled in batches of its own: the operator's search paid none of them.
  const events = await readSettledEvents(client, stack.settlement as Hex);
  expect(events.filter((e) => e.searchId === searchId)).toHaveLength(2);
});

test('a sponsor cancels a funded search, closes it on chain and withdraws all of it after the grace', async ({
  page,
}) => {
  const other = anvilAccount(7).address;
  await page.addInitScript(installTestWallet, { rpcUrl: stack.rpcUrl, account: other, startChainId: '0x1' });
  await page.goto(`${stack.app}/#/contribute`);
  await connectTestWallet(page, other, stack.chainId);
  await page.goto(`${stack.app}/#/sponsor`);
  await page.getByTestId('dataset-name').fill('toy-blobs');
  await page
    .getByTestId('file-csv')
    .setInputFiles({ name: 'blobs.csv', mimeType: 'text/csv', buffer: blobsCsv() });
  await page.getByTestId('dataset-check').click();
  await page.getByTestId('dataset-upload').click();
  await page.getByTestId('search-name').fill('Cancelled early');
  await page.getByTestId('search-budget').fill('5');
  await page.getByTestId('search-reward').fill('0.001');
  await page.getByTestId('search-post').click();
  await page.getByTestId('search-fund').click();
  await expect(page.getByTestId('search-status')).toContainText('Funded in', { timeout: 60_000 });

  const card = page.getByTestId('search-card').filter({ hasText: 'Cancelled early' });
  await card.getByTestId('search-cancel').click();
  await expect(card.getByTestId('search-state')).toHaveText('cancelled');
  await card.getByTestId('search-close').click();
  await expect(card.getByTestId('search-withdraw')).toBeVisible({ timeout: 30_000 });
  // The embedded chain's grace is ten minutes: move anvil's clock past it.
  const test = createTestClient({ mode: 'anvil', transport: http(stack.rpcUrl) });
  await test.increaseTime({ seconds: 3600 });
  await test.mine({ blocks: 1 });
  const client = createPublicClient({ transport: http(stack.rpcUrl) });
  const before = await client.getBalance({ address: other });
  await card.getByTestId('search-withdraw').click();
  await expect(card.getByTestId('search-withdraw')).toBeHidden({ timeout: 30_000 });
  expect(await client.getBalance({ address: other })).toBeGreaterThan(before);
});
