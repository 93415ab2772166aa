/**
 * keccak256 over bytes, the hash under every digest, trace and signature in the protocol.
 *
 * The default is viem's (JavaScript, available everywhere at once). `enableWasmKeccak()` swaps in
 * hash-wasm's WebAssembly keccak, about 9× faster on small inputs, after checking it against
 * known vectors: the coordinator hashes a trace, a digest and a vote for every result it accepts.
 * Both give the same bytes, so the swap changes speed only.
 */
import { keccak256 as viemKeccak256 } from 'viem';

type Keccak = (data: Uint8Array) => Uint8Array;

let impl: Keccak = (data) => viemKeccak256(data, 'bytes');

export function keccakBytes(data: Uint8Array): Uint8Array {
  return impl(data);
}

let loading: Promise<void> | undefined;

/** Switches `keccakBytes` to WebAssembly (idempotent); keeps the JavaScript one if it disagrees. */
export function enableWasmKeccak(): Promise<void> {
  loading ??= (async () => {
    const { createKeccak } = await import('hash-wasm');
    const hasher = await createKeccak(256);
    const wasm: Keccak = (data) => {
      hasher.init();
      hasher.update(data);
      return hasher.digest('binary');
    };
    // Empty input, one block minus one byte and two blocks (rate 136 bytes) cover the padding cases.
    for (const n of [0, 135, 136, 272, 1000]) {
      const probe = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 0xff);
      const a = wasm(probe);
      const b = impl(probe);
      if (a.length !== 32 || a.some((x, i) => x !== b[i])) throw new Error('WebAssembly keccak disagrees');
    }
    impl = wasm;
  })();
  return loading;
}
