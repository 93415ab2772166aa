/**
 * A volunteer's tab keeps working while it is hidden: the page is really hidden (its window minimised,
 * `document.visibilityState === 'hidden'`) before the first task is leased, and that task is leased,
 * computed on WebGPU in the page's Worker, submitted, agreed and settled on chain while it stays hidden.
 *
 * Why this test drives its own Chromium: Playwright turns on focus emulation
 * (`Emulation.setFocusEmulationEnabled`) in every page it creates, and Chromium then keeps the page
 * visible whatever happens to its window or tab (apparently by counting it as captured). A
 * Chromium started here and attached with `connectOverCDP(…, { noDefaults: true })` gets no such
 * override in its default context, so minimising the window hides the page as it would for a person.
 * Nor does it get Playwright's `--disable-background-timer-throttling` or
 * `--disable-renderer-backgrounding`: the hidden page's timers are throttled as in a real browser, and
 * more: Chromium's intensive wake-up throttling (chained timers woken once a minute), which a real tab
 * meets after five minutes hidden, starts here without the five minutes' grace.
 *
 * Besides the assertions it writes `test-results/hidden-tab.json`: each task's compute time (task
 * handed to the Worker → result back) with whether the page was hidden or visible throughout, the
 * hidden tasks first and then, with the window restored, visible ones in the same run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, expect, type Page, test } from '@playwright/test';
import { anvilAccount } from '../src/chain/accounts.ts';
import { type Stack, startStack, waitForSettlement } from './stack.ts';
import { connectTestWallet, type HeldSignatures, installTestWallet } from './wallet.ts';

/** Tasks computed in each state before the report is written (the first one also fetches the data). */
const TASKS_PER_STATE = Number(process.env.CAMBRIAN_HIDDEN_TASKS ?? 2);
const REPORT = 'hidden-tab.json';

test.describe.configure({ mode: 'serial', timeout: 480_000 });

let stack: Stack;
let browser: Browser;
let stopChromium: () => Promise<void>;
const account = anvilAccount(3).address;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  stack = await startStack();
  const { executablePath, args } = test.info().project.use.launchOptions ?? {};
  ({ browser, stop: stopChromium } = await launchChromium(executablePath ?? 'chromium', args ?? []));
});

test.afterAll(async () => {
  await browser?.close().catch(() => {});
  try {
    await stopChromium?.();
  } finally {
    await stack?.stop(); // the chain and coordinator go even when Chromium's clean-up fails
  }
});

/** Debian's Chromium with a DevTools port, attached without Playwright's per-page overrides. */
async function launchChromium(
  executablePath: string,
  args: string[],
): Promise<{ browser: Browser; stop: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'cambrian-hidden-'));
  const child = spawn(
    executablePath,
    [
      ...args.filter((a) => !a.startsWith(ENABLE_FEATURES)),
      enableFeatures(args, 'IntensiveWakeUpThrottling:grace_period_seconds/0'),
      '--headless',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      '--window-size=1280,900',
      'about:blank',
    ],
    // Its own process group, so that stop() can end Chromium's helper processes too.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      signalGroup(child, 'SIGTERM');
      await exited;
    }
    // Helper processes outlive the browser process for a moment and keep writing to the profile
    // (ENOTEMPTY on its removal in a fresh-clone CI run): end the whole group, then remove it.
    signalGroup(child, 'SIGKILL');
    rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  };
  try {
    const endpoint = await devToolsEndpoint(child);
    return { browser: await chromium.connectOverCDP(endpoint, { noDefaults: true }), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Signals every process of the child's group; none left is fine. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

const ENABLE_FEATURES = '--enable-features=';

/** One --enable-features switch with the config's features and `extra` (Chromium reads only one). */
function enableFeatures(args: string[], extra: string): string {
  const features = args
    .filter((a) => a.startsWith(ENABLE_FEATURES))
    .map((a) => a.slice(ENABLE_FEATURES.length));
  return ENABLE_FEATURES + [...features, extra].join(',');
}

function devToolsEndpoint(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no DevTools endpoint from Chromium:\n${seen}`)), 30_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = seen.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`Chromium exited with ${code}:\n${seen}`)));
  });
}

/** Runs in the page: every visibility state with the time it began (performance.now()). */
function recordVisibility(): void {
  const log: { state: string; at: number }[] = [{ state: document.visibilityState, at: 0 }];
  (window as unknown as { __visibility: typeof log }).__visibility = log;
  document.addEventListener('visibilitychange', () =>
    log.push({ state: document.visibilityState, at: performance.now() }),
  );
}

interface PageTimeline {
  visibility: { state: string; at: number }[];
  current: string;
  started: { taskId: string; at: number }[];
  computed: { taskId: string; at: number }[];
  settled: { taskId: string; at: number }[];
}

/** The page's own record: visibility changes and the contribute loop's performance marks. */
function timeline(page: Page): Promise<PageTimeline> {
  return page.evaluate(() => {
    const marks = (name: string) =>
      performance
        .getEntriesByName(name)
        .map((m) => ({ taskId: String((m as PerformanceMark).detail), at: m.startTime }));
    return {
      visibility: (window as unknown as { __visibility: { state: string; at: number }[] }).__visibility,
      current: document.visibilityState,
      started: marks('cambrian:task-start'),
      computed: marks('cambrian:task-computed'),
      settled: marks('cambrian:task-settled'),
    };
  });
}

/** Minimises or restores the page's browser window, as a person would. */
async function setWindowState(page: Page, windowState: 'minimized' | 'normal'): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  const { windowId } = await cdp.send('Browser.getWindowForTarget');
  await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState } });
  await cdp.detach();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? Math.round((sorted[mid - 1] + sorted[mid]) / 2) : sorted[Math.floor(mid)];
}

/** Tasks computed entirely within [from, to), with their compute time. */
function computeTimes(t: PageTimeline, from: number, to = Number.POSITIVE_INFINITY) {
  return t.started
    .filter((s) => s.at >= from && s.at < to)
    .flatMap((s) => {
      const done = t.computed.find((c) => c.taskId === s.taskId && c.at >= s.at && c.at < to);
      return done ? [{ taskId: s.taskId, computeMs: Math.round(done.at - s.at) }] : [];
    });
}

test('a task is leased, computed, submitted and settled while the page is hidden', async () => {
  const testInfo = test.info();
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.addInitScript(installTestWallet, {
    rpcUrl: stack.rpcUrl,
    account,
    startChainId: '0x1',
    holdSignatures: true,
  });
  await page.addInitScript(recordVisibility);
  await page.goto(`${stack.app}/#/contribute`);
  await expect(page.getByTestId('selftest')).toHaveAttribute('data-passed', 'true', { timeout: 120_000 });
  await expect(page.getByTestId('selftest-verdict')).toContainText('passed on webgpu');
  await connectTestWallet(page, account, stack.chainId);

  // Start while visible; the wallet holds the one signature until the window is minimised, so no
  // session (and so no lease) can exist before the page is hidden.
  await page.getByTestId('start').click();
  const pendingSignatures = () =>
    page.evaluate(() => (window as unknown as { __testWallet: HeldSignatures }).__testWallet.pending);
  await expect.poll(pendingSignatures).toBe(1);
  await setWindowState(page, 'minimized');
  await expect.poll(() => page.evaluate(() => document.visibilityState)).toBe('hidden');
  const hiddenAt = (await timeline(page)).visibility.at(-1)?.at ?? Number.NaN;
  expect((await timeline(page)).started).toEqual([]);
  await page.evaluate(() => (window as unknown as { __testWallet: HeldSignatures }).__testWallet.approve());

  // The chain, read from Node, says a task of this tab settled; the page, still hidden, saw it too.
  const settledTask = await waitForSettlement(stack, account, 240_000);
  await expect
    .poll(async () => (await timeline(page)).settled.map((s) => s.taskId), { timeout: 150_000 })
    .toContain(settledTask);
  await expect
    .poll(async () => computeTimes(await timeline(page), hiddenAt).length, { timeout: 180_000 })
    .toBeGreaterThanOrEqual(TASKS_PER_STATE);
  const hidden = await timeline(page);
  expect(hidden.current).toBe('hidden');
  expect(hidden.visibility.map((v) => v.state)).toEqual(['visible', 'hidden']);
  const leased = hidden.started.find((s) => s.taskId === settledTask);
  expect(leased?.at).toBeGreaterThan(hiddenAt);
  expect(hidden.settled.find((s) => s.taskId === settledTask)?.at).toBeGreaterThan(leased?.at ?? 0);

  // Visible again: the same loop carries on, and the settled task's card shows it.
  await setWindowState(page, 'normal');
  await expect.poll(() => page.evaluate(() => document.visibilityState)).toBe('visible');
  const visibleAt = (await timeline(page)).visibility.at(-1)?.at ?? Number.NaN;
  await expect(
    page
      .locator('[data-testid="task-row"][data-phase="settled"]')
      .filter({ has: page.locator(`code[title="${settledTask}"]`) }),
  ).toBeVisible({ timeout: 90_000 });
  await expect
    .poll(async () => computeTimes(await timeline(page), visibleAt).length, { timeout: 180_000 })
    .toBeGreaterThanOrEqual(TASKS_PER_STATE);
  await page.getByTestId('stop').click();

  const final = await timeline(page);
  const report = {
    measuredAt: new Date().toISOString(),
    hidden: computeTimes(final, hiddenAt, visibleAt),
    visible: computeTimes(final, visibleAt),
    visibility: final.visibility,
  };
  writeFileSync(join(testInfo.project.outputDir, REPORT), JSON.stringify(report, null, 2));
  const ms = (tasks: { computeMs: number }[]) => tasks.map((t) => t.computeMs);
  console.log(
    `hidden-tab: compute ms per task, hidden [${ms(report.hidden).join(', ')}] (median ${median(ms(report.hidden))}), ` +
      `visible [${ms(report.visible).join(', ')}] (median ${median(ms(report.visible))})`,
  );
  expect(errors).toEqual([]);
});
