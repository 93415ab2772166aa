/**
 * Runs the forge suite (contracts/forge/*.t.sol) from the @foundry-rs/forge npm package, offline: the
 * compiler is bin/solc, the project's solc-js (foundry.toml). Runs stated in foundry.toml: fuzz 256 runs per
 * test, invariants 32 runs × 40 calls each. The first run compiles with solc-js through IR (minutes on a
 * busy machine); later runs use forge's cache in .forge/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../src/chain/build.ts';

function forgeBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const native = join(
    ROOT,
    'node_modules',
    '@foundry-rs',
    `forge-${process.platform}-${arch}`,
    'bin',
    'forge',
  );
  return existsSync(native) ? native : join(ROOT, 'node_modules', '.bin', 'forge');
}

it('forge: invariants and fuzzed signature and grant rules hold', { timeout: 900_000 }, () => {
  const run = spawnSync(forgeBinary(), ['test', '--root', ROOT], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 880_000,
  });
  const output = `${run.stdout}\n${run.stderr}`;
  expect(output, output).toMatch(/13 tests passed, 0 failed/);
  for (const name of [
    'invariant_accounting',
    'invariant_rules',
    'invariant_owedMatchesModel',
    'testFuzz_forgedVoteNeverPays',
    'testFuzz_grantExpiry',
    'testFuzz_revokeOtherKey',
    'invariant_bondsMatchModel',
    'test_slashByVerdictOnly',
    'test_revokedKeyCannotSlash',
    'testFuzz_unbondDelay',
    'invariant_poolsMatchModel',
    'test_searchLifecycle',
  ]) {
    expect(output).toMatch(new RegExp(`\\[PASS\\] ${name}\\(`));
  }
  expect(run.status).toBe(0);
});
