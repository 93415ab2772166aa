import { secp256k1 } from '@noble/curves/secp256k1';
import { type Hex, hexToBytes, keccak256, numberToHex, recoverAddress, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { expect, it } from 'vitest';
import { cambrianDomain, hashResultVote, signResultVote } from '../protocol/eip712.ts';
import { VoteVerifier, verifyWithPoint } from './signatures.ts';

const domain = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

it('the fast path accepts exactly the signatures recovery accepts', async () => {
  for (let i = 0; i < 20; i++) {
    const key = privateKeyToAccount(generatePrivateKey());
    const point = secp256k1.ProjectivePoint.fromHex(hexToBytes(key.publicKey));
    const vote = { taskId: keccak256(toHex(i)), digest: keccak256(toHex(i + 1000)), worker: key.address };
    const sig = await signResultVote(key, domain, vote);
    const hash = hashResultVote(domain, vote);
    expect(verifyWithPoint(point, hash, sig)).toBe(true);
    // The other recovery id recovers someone else on chain, so it must fail here too.
    const flipped = `${sig.slice(0, 130)}${sig.endsWith('1b') ? '1c' : '1b'}` as Hex;
    expect(await recoverAddress({ hash, signature: flipped })).not.toBe(key.address);
    expect(verifyWithPoint(point, hash, flipped)).toBe(false);
    const badS =
      `${sig.slice(0, 66)}${numberToHex(BigInt(`0x${sig.slice(66, 130)}`) ^ 1n, { size: 32 }).slice(2)}${sig.slice(130)}` as Hex;
    expect(verifyWithPoint(point, hash, badS)).toBe(false);
    expect(verifyWithPoint(point, keccak256(hash), sig)).toBe(false);
  }
});

it('the verifier refuses a vote from another key even after caching', async () => {
  const key = privateKeyToAccount(generatePrivateKey());
  const other = privateKeyToAccount(generatePrivateKey());
  const verifier = new VoteVerifier(domain);
  const vote = { taskId: keccak256('0x01'), digest: keccak256('0x02'), worker: key.address };
  await verifier.verify(vote, key.address, await signResultVote(key, domain, vote));
  await verifier.verify(vote, key.address, await signResultVote(key, domain, vote)); // cached path
  await expect(verifier.verify(vote, key.address, await signResultVote(other, domain, vote))).rejects.toThrow(
    /bad signature/,
  );
});
