import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createPublicClient, http } from 'viem';
import { describe, expect, it } from 'vitest';
import { settlementAbi } from '../../chain/generated/settlement.ts';

describe('cambrian chain', () => {
  it('starts anvil, deploys and funds, prints one JSON line, and stops anvil on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/cambrian.mjs', 'chain', '--json', '--fund', '5000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const info = JSON.parse(line) as {
        rpcUrl: string;
        chainId: number;
        settlement: `0x${string}`;
        admin: `0x${string}`;
        coordinator: `0x${string}`;
        referee: `0x${string}`;
      };
      expect(info.chainId).toBe(31337);
      // Admin, coordinator and referee are three different dev accounts: a leaked coordinator key owns nothing.
      expect(info.admin).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
      expect(info.coordinator).toBe('0x70997970C51812dc3A010C7d01b50e0d17dc79C8');
      expect(info.referee).toBe('0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC');
      const client = createPublicClient({ transport: http(info.rpcUrl) });
      const read = (functionName: 'pool' | 'minQuorum') =>
        client.readContract({ address: info.settlement, abi: settlementAbi, functionName });
      expect(await read('pool')).toBe(5000n);
      expect(await read('minQuorum')).toBe(2n);
      const role = (name: 'COORDINATOR_ROLE' | 'REFEREE_ROLE') =>
        client.readContract({ address: info.settlement, abi: settlementAbi, functionName: name });
      const hasRole = async (name: 'COORDINATOR_ROLE' | 'REFEREE_ROLE', who: `0x${string}`) =>
        client.readContract({
          address: info.settlement,
          abi: settlementAbi,
          functionName: 'hasRole',
          args: [await role(name), who],
        });
      expect(await hasRole('COORDINATOR_ROLE', info.coordinator)).toBe(true);
      expect(await hasRole('COORDINATOR_ROLE', info.admin)).toBe(false);
      expect(await hasRole('REFEREE_ROLE', info.referee)).toBe(true);
      expect(
        await client.readContract({
          address: info.settlement,
          abi: settlementAbi,
          functionName: 'defaultAdmin',
        }),
      ).toBe(info.admin);

      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
      await expect(client.getChainId()).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
