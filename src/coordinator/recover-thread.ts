/**
 * The signature-recovery thread (see recovery-pool.ts): answers `{ id, items: [hash, sig][] }`
 * with `{ id, signers: (address | null)[] }`, using the same `recoverSigner` as the event loop.
 */
import { parentPort } from 'node:worker_threads';
import type { Hex } from 'viem';
import { enableWasmKeccak } from '../protocol/keccak.ts';
import { recoverSigner } from './signatures.ts';

await enableWasmKeccak();
parentPort!.on('message', ({ id, items }: { id: number; items: [Hex, Hex][] }) => {
  parentPort!.postMessage({ id, signers: items.map(([hash, sig]) => recoverSigner(hash, sig) ?? null) });
});
