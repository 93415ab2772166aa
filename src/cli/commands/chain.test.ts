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
        coordinator: string;
      };
      expect(info.chainId).toBe(31337);
      expect(info.coordinator).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
      const client = createPublicClient({ transport: http(info.rpcUrl) });
      const read = (functionName: 'pool' | 'minQuorum') =>
        client.readContract({ address: info.settlement, abi: settlementAbi, functionName });
      expect(await read('pool')).toBe(5000n);
      expect(await read('minQuorum')).toBe(2n);

      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
      await expect(client.getChainId()).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
