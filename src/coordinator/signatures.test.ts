import fc from 'fast-check';
import { type Hex, keccak256, numberToHex, recoverAddress, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { expect, it } from 'vitest';
import { cambrianDomain, hashResultVote, malleate, signResultVote } from '../protocol/eip712.ts';
import { recoverSigner, verifyVote } from './signatures.ts';

const domain = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

it('recovers what viem (JavaScript ecrecover) recovers, for good and tampered signatures', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 2 ** 30 }),
      fc.integer({ min: 0, max: 3 }),
      async (i, tamper) => {
        const key = privateKeyToAccount(keccak256(toHex(i + 1)));
        const vote = { taskId: keccak256(toHex(i)), digest: keccak256(toHex(i + 7)), worker: key.address };
        const hash = hashResultVote(domain, vote);
        let sig = await signResultVote(key, domain, vote);
        // 1: the other recovery id (recovers someone else), 2: another s, 3: another message.
        if (tamper === 1) sig = `${sig.slice(0, 130)}${sig.endsWith('1b') ? '1c' : '1b'}` as Hex;
        if (tamper === 2)
          sig =
            `${sig.slice(0, 66)}${numberToHex(BigInt(`0x${sig.slice(66, 130)}`) ^ 1n, { size: 32 }).slice(2)}${sig.slice(130)}` as Hex;
        const message = tamper === 3 ? keccak256(hash) : hash;
        const expected = await recoverAddress({ hash: message, signature: sig }).catch(() => undefined);
        expect(recoverSigner(message, sig)).toBe(expected);
        if (tamper === 0) expect(expected).toBe(key.address);
      },
    ),
    { numRuns: 40 },
  );
});

it('refuses a vote from another key, a malleable one and an out-of-range r', async () => {
  const key = privateKeyToAccount(generatePrivateKey());
  const other = privateKeyToAccount(generatePrivateKey());
  const vote = { taskId: keccak256('0x01'), digest: keccak256('0x02'), worker: key.address };
  const sig = await signResultVote(key, domain, vote);
  const otherSig = await signResultVote(other, domain, vote);
  expect(() => verifyVote(domain, vote, key.address, sig)).not.toThrow();
  expect(() => verifyVote(domain, vote, key.address, malleate(sig))).toThrow(/high-s/);
  expect(() => verifyVote(domain, vote, key.address, otherSig)).toThrow(/session key/);
  const zeroR = `0x${'00'.repeat(32)}${sig.slice(66)}` as Hex;
  expect(() => verifyVote(domain, vote, key.address, zeroR)).toThrow(/does not recover/);
  const bigR = `0x${'ff'.repeat(32)}${sig.slice(66)}` as Hex;
  expect(() => verifyVote(domain, vote, key.address, bigR)).toThrow(/does not recover/);
});
