/**
 * A recompute thread (see recompute-pool.ts): answers `{ id, name, args }` with `{ id, value }` or
 * `{ id, error }`, running the same function the event loop would.
 */
import { parentPort } from 'node:worker_threads';
import { enableWasmKeccak } from '../protocol/keccak.ts';
import { RECOMPUTE_JOBS, type RecomputeReply } from './recompute-pool.ts';

// As on the event loop (service.ts): state hashes are keccak over the whole parameter vector.
await enableWasmKeccak();

type Request = { id: number; name: keyof typeof RECOMPUTE_JOBS; args: unknown[] };

const port = parentPort!;
port.on('message', async ({ id, name, args }: Request) => {
  let reply: RecomputeReply;
  try {
    const fn = RECOMPUTE_JOBS[name] as (...a: unknown[]) => Promise<unknown>;
    reply = { id, value: await fn(...args) };
  } catch (err) {
    reply = { id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
