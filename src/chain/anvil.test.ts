import { describe, expect, it } from 'vitest';
import { startAnvil } from './anvil.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('anvil launcher', () => {
  it('starts nodes on distinct free ports, answers RPC, and stops them', async () => {
    const [a, b] = await Promise.all([startAnvil(), startAnvil({ chainId: 4242 })]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.chainId).toBe(31337);
      expect(b.chainId).toBe(4242);
      expect(alive(a.pid)).toBe(true);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(alive(a.pid)).toBe(false);
    expect(alive(b.pid)).toBe(false);
    await a.stop(); // idempotent
  });
});
