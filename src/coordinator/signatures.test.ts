import fc from 'fast-check';
import { type Hex, keccak256, numberToHex, recoverAddress, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { expect, it } from 'vitest';
import { cambrianDomain, hashResultVote, malleate, signResultVote } from '../protocol/eip712.ts';
import { RecoveryPool } from './recovery-pool.ts';
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
  const zeroR = `0x${'00'.repeat(32)}${sig.slice(66)}` as Hex;
  const bigR = `0x${'ff'.repeat(32)}${sig.slice(66)}` as Hex;
  const pool = new RecoveryPool(2);
  try {
    // The same verdicts on the event loop and in the recovery threads.
    for (const recover of [recoverSigner, (h: Hex, s: Hex) => pool.recover(h, s)]) {
      await expect(verifyVote(domain, vote, key.address, sig, recover)).resolves.toBeUndefined();
      await expect(verifyVote(domain, vote, key.address, malleate(sig), recover)).rejects.toThrow(/high-s/);
      await expect(verifyVote(domain, vote, key.address, otherSig, recover)).rejects.toThrow(/session key/);
      await expect(verifyVote(domain, vote, key.address, zeroR, recover)).rejects.toThrow(/does not recover/);
      await expect(verifyVote(domain, vote, key.address, bigR, recover)).rejects.toThrow(/does not recover/);
    }
  } finally {
    await pool.close();
  }
});

it('the recovery pool answers a burst split over its threads, in order', async () => {
  const keys = Array.from({ length: 24 }, (_, i) => privateKeyToAccount(keccak256(toHex(1000 + i))));
  const signed = await Promise.all(
    keys.map(async (key, i) => {
      const vote = { taskId: keccak256(toHex(i)), digest: keccak256(toHex(i + 500)), worker: key.address };
      return { key, hash: hashResultVote(domain, vote), sig: await signResultVote(key, domain, vote) };
    }),
  );
  const pool = new RecoveryPool(3);
  try {
    const signers = await Promise.all(signed.map((s) => pool.recover(s.hash, s.sig)));
    expect(signers).toEqual(keys.map((k) => k.address));
  } finally {
    await pool.close();
  }
});

it('a recovery thread that dies loses nothing: its requests and later ones are answered on the event loop', async () => {
  const key = privateKeyToAccount(keccak256(toHex(77)));
  const vote = { taskId: keccak256('0x07'), digest: keccak256('0x08'), worker: key.address };
  const hash = hashResultVote(domain, vote);
  const sig = await signResultVote(key, domain, vote);
  const pool = new RecoveryPool(1);
  const errors: unknown[] = [];
  const log = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const inFlight = Promise.all([pool.recover(hash, sig), pool.recover(hash, sig)]);
    // Runs right after the pool's flush posted the batch, before any answer can be read.
    await new Promise((r) => setImmediate(r));
    const thread = (pool as unknown as { threads: { worker: { emit(e: string, err: Error): void } }[] })
      .threads[0];
    thread.worker.emit('error', new Error('thread crashed'));
    expect(await inFlight).toEqual([key.address, key.address]);
    expect(await pool.recover(hash, sig)).toBe(key.address);
    expect(errors.length).toBe(1); // the thread's end was reported once
  } finally {
    console.error = log;
    await pool.close();
  }
});
