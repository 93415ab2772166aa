/**
 * `abi.encode` of static words (uintN, intN, bytes32, address), for the protocol's fixed tuples:
 * the result digest, the trace leaves and the ResultVote struct. They are hashed on every
 * submission, so they are encoded directly rather than through a generic encoder; the tests
 * check the bytes against viem's `encodeAbiParameters` and `hashTypedData`.
 */
import { type Hex, hexToBytes } from 'viem';

export type AbiWord =
  | { uint: number | bigint; bits: number }
  | { int: bigint; bits: number }
  | { bytes32: Hex }
  | { address: Hex };

/** The words, 32 bytes each, range-checked as the encoder would. */
export function abiWords(...words: AbiWord[]): Uint8Array {
  const out = new Uint8Array(32 * words.length);
  for (const [i, word] of words.entries()) {
    const at = 32 * i;
    if ('bytes32' in word) {
      if (!/^0x[0-9a-fA-F]{64}$/.test(word.bytes32)) throw new Error(`not 32 bytes: ${word.bytes32}`);
      out.set(hexToBytes(word.bytes32), at);
      continue;
    }
    if ('address' in word) {
      if (!/^0x[0-9a-fA-F]{40}$/.test(word.address)) throw new Error(`not an address: ${word.address}`);
      out.set(hexToBytes(word.address), at + 12);
      continue;
    }
    const signed = 'int' in word;
    const value = BigInt(signed ? word.int : word.uint);
    const min = signed ? -(1n << BigInt(word.bits - 1)) : 0n;
    const max = signed ? (1n << BigInt(word.bits - 1)) - 1n : (1n << BigInt(word.bits)) - 1n;
    if (value < min || value > max)
      throw new Error(`${value} out of range for ${signed ? 'int' : 'uint'}${word.bits}`);
    let v = BigInt.asUintN(256, value); // two's complement, sign-extended to the whole word
    for (let b = 31; b >= 0; b--) {
      out[at + b] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  return out;
}
