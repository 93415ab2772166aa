/** The protocol types every component shares: spec, result, digest, trace, signatures. */

export * from './eip712.ts';
export * from './keccak.ts';
export * from './result.ts';
export * from './spec.ts';
export * from './trace.ts';
