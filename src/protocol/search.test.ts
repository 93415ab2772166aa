import { encodeAbiParameters, keccak256 } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { cambrianDomain } from './eip712.ts';
import {
  manifestHashOf,
  parseManifest,
  recoverSearchActionSigner,
  type SearchManifestInput,
  searchIdOf,
  signSearchAction,
} from './search.ts';

const manifest: SearchManifestInput = {
  v: 1,
  name: 'Digits, small nets',
  dataset: { name: 'digits', sha256: `0x${'ab'.repeat(32)}` },
  validation: 200,
  splitSeed: 1,
  family: 'mlp',
  maxParams: 50_000,
  strategy: { kind: 'evolution', seed: 7, budget: 40, steps: 30 },
  rewardWei: '1000000000000000',
};

describe('search manifests', () => {
  it('hash canonically: key order and defaults do not change the id', () => {
    const a = parseManifest(manifest);
    const b = parseManifest(Object.fromEntries(Object.entries(manifest).reverse()));
    expect(manifestHashOf(a)).toBe(manifestHashOf(b));
    expect(manifestHashOf(parseManifest({ ...manifest, salt: 1 }))).not.toBe(manifestHashOf(a));
  });

  it("ids are keccak256(abi.encode(sponsor, manifestHash)), the chain's search id", () => {
    const sponsor = privateKeyToAccount(generatePrivateKey()).address;
    const hash = manifestHashOf(parseManifest(manifest));
    expect(searchIdOf(sponsor, hash)).toBe(
      keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'bytes32' }], [sponsor, hash])),
    );
  });

  it('refuse work beyond the stated limits, and shapes that do not fit the family', () => {
    expect(() =>
      parseManifest({ ...manifest, strategy: { ...manifest.strategy, steps: 2000 }, maxParams: 1_000_000 }),
    ).toThrow(/training MACs/);
    expect(() => parseManifest({ ...manifest, family: 'cnn' })).toThrow(/input shape/);
    expect(() => parseManifest({ ...manifest, rewardWei: '0' })).toThrow(/wei/);
    expect(() => parseManifest({ ...manifest, extra: 1 })).toThrow();
  });
});

describe('SearchAction signatures', () => {
  it('recover to the sponsor and to no one for another action', async () => {
    const sponsor = privateKeyToAccount(generatePrivateKey());
    const domain = cambrianDomain(31337, `0x${'11'.repeat(20)}`);
    const manifestHash = manifestHashOf(parseManifest(manifest));
    const action = {
      searchId: searchIdOf(sponsor.address, manifestHash),
      action: 'pause' as const,
      manifestHash,
      nonce: 5n,
      expiresAt: 2_000_000_000n,
    };
    const sig = await signSearchAction(sponsor, domain, action);
    expect(await recoverSearchActionSigner(domain, action, sig)).toBe(sponsor.address);
    expect(await recoverSearchActionSigner(domain, { ...action, action: 'cancel' }, sig)).not.toBe(
      sponsor.address,
    );
    expect(await recoverSearchActionSigner(domain, action, '0x1234')).toBeUndefined();
  });
});
