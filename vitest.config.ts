import { defineConfig } from 'vitest/config';

// Unit, property, GPU (Dawn on SwiftShader), contract (anvil) and coordinator tests.
// Browser end-to-end tests live in e2e/ and run under Playwright instead.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'contracts/**/*.test.ts'],
    pool: 'forks',
    // Tests wait for events, bounded only against a hang (EVENT_WAIT_MS, 4 min, in
    // src/coordinator/testing.ts): a test's own limit sits above that, never near a slow machine's time.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
