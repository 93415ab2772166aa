import { expect, test } from '@playwright/test';

test('the engine Worker reports a WebGPU adapter and passes the bit-exact self-test', async ({
  page,
}, testInfo) => {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto('/');

  // Plain words first; the technical report sits behind a disclosure.
  await expect(page.getByTestId('device-verdict')).toBeVisible();
  await page.getByText('Details: graphics chip and self-test').click();
  // The report comes from inside the Worker (navigator.gpu in a DedicatedWorkerGlobalScope).
  await expect(page.getByTestId('gpu-report')).toBeVisible();
  const adapter = await page.getByTestId('gpu-adapter').textContent();
  expect(adapter?.trim().length).toBeGreaterThan(0);

  const selfTest = page.getByTestId('selftest');
  await expect(selfTest).toBeVisible({ timeout: 120_000 });
  await expect(selfTest).toHaveAttribute('data-passed', 'true');
  await expect(page.getByTestId('selftest-verdict')).toContainText('passed on webgpu');
  // The pinned conv (spec v2) vectors ran in the Worker too, bit for bit.
  for (const name of ['conv-pool-flatten', 'conv-stride-residual-gap'])
    await expect(selfTest.getByText(`training vector ${name}`)).toBeVisible();

  await page.screenshot({ path: testInfo.outputPath('contribute-selftest.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('a browser without WebGPU passes the self-test on the CPU path, on the WebAssembly SIMD kernels', async ({
  playwright,
  baseURL,
}, testInfo) => {
  // A browser of its own, started without --enable-unsafe-webgpu and with WebGPU switched off, as for a
  // volunteer whose browser or machine has none: the engine Worker must fall back to the CPU reference.
  const { executablePath, args = [] } = testInfo.project.use.launchOptions ?? {};
  const browser = await playwright.chromium.launch({
    executablePath,
    args: [...args.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-features=WebGPU'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(baseURL ?? '/');
    await expect(page.getByTestId('device-verdict')).toContainText('Ready on the processor', {
      timeout: 120_000,
    });
    await page.getByText('Details: graphics chip and self-test').click();
    await expect(page.getByTestId('gpu-missing')).toBeVisible();
    const selfTest = page.getByTestId('selftest');
    await expect(selfTest).toHaveAttribute('data-passed', 'true', { timeout: 120_000 });
    await expect(page.getByTestId('selftest-verdict')).toContainText('passed on cpu (WebAssembly SIMD)');
    for (const name of ['conv-pool-flatten', 'conv-stride-residual-gap'])
      await expect(selfTest.getByText(`training vector ${name}`)).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('contribute-cpu-selftest.png'), fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
});
