import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cambrianDomain } from '../protocol/eip712.ts';
import { openDb } from './db.ts';
import { addressNetwork, bearerToken } from './rate-limits.ts';
import { startCoordinator } from './service.ts';

describe('rate-limit keys', () => {
  it('counts an address by its network', () => {
    expect(addressNetwork('203.0.113.7')).toBe('203.0.113.0/24');
    expect(addressNetwork('::ffff:203.0.113.200')).toBe('203.0.113.0/24');
    expect(addressNetwork('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressNetwork('2001:db8:1:2:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(addressNetwork('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressNetwork('::1')).toBe('0:0:0:0::/64');
    expect(addressNetwork('local')).toBe('local');
  });

  it('parses the token the way the API does, whatever the spelling', () => {
    for (const h of ['Bearer abc', 'bearer abc', 'BEARER   abc', 'Bearer\tabc ', ' Bearer abc'])
      expect(bearerToken(h)).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

/** POST /sessions from a chosen loopback source address (all of 127.0.0.0/8 is this host). */
function postFrom(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/api/v1/sessions`,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

describe('per-address limits', () => {
  it('are shared by every address of one network', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({
      db,
      domain: cambrianDomain(31337, '0x0000000000000000000000000000000000000001'),
      log: () => {},
      rateLimits: { perAddress: null, perToken: null, sessionsPerAddress: { limit: 4, windowMs: 60_000 } },
    });
    try {
      const statuses: number[] = [];
      for (let i = 2; i < 10; i++) statuses.push(await postFrom(coordinator.url, `127.0.0.${i}`));
      // The bodies are invalid (400) until the network's four are spent; then 429 from any address.
      expect(statuses.slice(0, 4).every((s) => s === 400)).toBe(true);
      expect(statuses.slice(4).every((s) => s === 429)).toBe(true);
    } finally {
      await coordinator.close();
      await db.close();
    }
  });
});
