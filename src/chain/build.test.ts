import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSettlementModule, ROOT, SETTLEMENT_MODULE } from './build.ts';
import { settlementAbi, settlementBytecode } from './generated/settlement.ts';

describe('contract build', () => {
  it('reproduces the committed module from contracts/Settlement.sol', () => {
    // The committed module was built in another process (another day, another machine): equal
    // text means the build is reproducible as well as up to date.
    const first = buildSettlementModule();
    const committed = readFileSync(join(ROOT, SETTLEMENT_MODULE), 'utf8');
    // If this fails: run `cambrian build-contracts` and commit src/chain/generated/settlement.ts.
    expect(committed).toBe(first.text);
    expect(first.contract.deployedSize).toBeLessThanOrEqual(24_576); // EIP-170
  });

  it('exposes the ABI outside tools rely on', () => {
    const settle = settlementAbi.find((e) => e.type === 'function' && e.name === 'settle');
    // ABI 5: settle(bytes32 searchId, address[] workers, Grant[] grants, bytes tasks, bytes specs), see docs/CONTRACT.md.
    expect(settle && 'inputs' in settle ? settle.inputs.map((i) => i.type) : undefined).toEqual([
      'bytes32',
      'address[]',
      'tuple[]',
      'bytes',
      'bytes',
    ]);
    const names = settlementAbi.filter((e) => e.type === 'function').map((e) => e.name);
    for (const fn of [
      'settle',
      'fund',
      'withdraw',
      'claim',
      'claimTo',
      'owed',
      'claimable',
      'strikes',
      'settled',
      'revokeSession',
      'voidBatch',
      'openSearch',
      'fundSearch',
      'closeSearch',
      'reopenSearch',
      'withdrawSearch',
      'searchOf',
      'VERSION',
    ]) {
      expect(names).toContain(fn);
    }
    expect(settlementBytecode.length).toBeGreaterThan(2 * 1024);
  });
});
