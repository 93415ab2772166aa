import { defineConfig } from 'vitest/config';

// Unit, property, GPU (Dawn on SwiftShader), contract (anvil) and coordinator tests.
// Browser end-to-end tests live in e2e/ and run under Playwright instead.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'contracts/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
