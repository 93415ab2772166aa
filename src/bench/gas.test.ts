/**
 * The gas target of Settlement (issue 12) as a test: gas is deterministic on a fresh anvil chain (fixed keys,
 * deterministic signatures), so this is a count, not a timing.
 */
import { expect, it } from 'vitest';
import { anvilAccount } from '../chain/accounts.ts';
import { startAnvil } from '../chain/anvil.ts';
import { connectChain } from '../chain/client.ts';
import { measure } from './gas.ts';

it.each(['operator', 'search'] as const)(
  'settles returning workers at ≤ 20,000 gas per task marginal (batch 50, 2 votes, paid from the %s pool), one ecrecover per vote and no grant checked again',
  async (payer) => {
    const node = await startAnvil({ args: ['--steps-tracing'] });
    try {
      const conn = await connectChain(node.rpcUrl, anvilAccount(0));
      const scenario = { votes: 2, workers: 'returning', pool: 16, payer } as const;
      const one = await measure(conn, { ...scenario, batch: 1 });
      const fifty = await measure(conn, { ...scenario, batch: 50 });
      expect((fifty.gasUsed - one.gasUsed) / 49).toBeLessThanOrEqual(20_000);
      // 100 votes, each one ecrecover (3,000 plus the 100-gas call); a grant verified again would add more.
      expect(fifty.profile['signature checks (ecrecover)']).toBe(100 * 3_100);
      expect(fifty.fields.grants).toBe(0);
    } finally {
      await node.stop();
    }
  },
  180_000,
);
