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
