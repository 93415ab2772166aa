/**
 * Verifies the two signed types the coordinator accepts (DESIGN §3) under the contract's rules
 * (65 bytes, v ∈ {27, 28}, low s), so nothing the coordinator accepts can fail on chain for its
 * signatures. Failures are 4xx refusals naming what was wrong.
 */
import { invert } from '@noble/curves/abstract/modular';
import { secp256k1 } from '@noble/curves/secp256k1';
import { type Hex, hexToBytes, isAddressEqual, recoverPublicKey } from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import {
  type CambrianDomain,
  hashResultVote,
  recoverResultVoteSigner,
  recoverSessionGrantSigner,
  signatureShapeError,
} from '../protocol/eip712.ts';
import { Refusal } from './errors.ts';

function checkShape(sig: Hex, what: string): void {
  const shape = signatureShapeError(sig);
  if (shape)
    throw new Refusal(
      400,
      `bad signature: ${what} ${shape === 'length' ? 'is not 65 bytes' : `has bad ${shape}`}`,
    );
}

export async function verifyGrant(
  domain: CambrianDomain,
  grant: { worker: Hex; sessionKey: Hex; expiresAt: number },
  grantSig: Hex,
): Promise<void> {
  checkShape(grantSig, 'grantSig');
  const signer = await recoverSessionGrantSigner(
    domain,
    { ...grant, expiresAt: BigInt(grant.expiresAt) },
    grantSig,
  );
  if (!signer || !isAddressEqual(signer, grant.worker)) {
    throw new Refusal(401, 'bad signature: grant not signed by the worker');
  }
}

export async function verifyVote(
  domain: CambrianDomain,
  vote: { taskId: Hex; digest: Hex; worker: Hex },
  sessionKey: Hex,
  voteSig: Hex,
): Promise<void> {
  checkShape(voteSig, 'voteSig');
  const signer = await recoverResultVoteSigner(domain, vote, voteSig);
  if (!signer || !isAddressEqual(signer, sessionKey)) {
    throw new Refusal(401, 'bad signature: vote not signed by the session key');
  }
}

type Point = ReturnType<typeof secp256k1.ProjectivePoint.fromHex>;
const N = secp256k1.CURVE.n;

/**
 * ECDSA verification against a known public key with the same outcome as `recover(hash, sig) ===
 * key` under the contract's rules: r, s in range (low s checked by the caller), and the recovery id
 * v − 27 must be the parity of R.y with R.x < n, or ecrecover would return another address.
 */
export function verifyWithPoint(point: Point, hash: Hex, sig: Hex): boolean {
  const r = BigInt(`0x${sig.slice(2, 66)}`);
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v = Number.parseInt(sig.slice(130, 132), 16);
  if (r <= 0n || r >= N || s <= 0n || s >= N || (v !== 27 && v !== 28)) return false;
  const w = invert(s, N);
  const u1 = (BigInt(hash) * w) % N;
  const u2 = (r * w) % N;
  const R = secp256k1.ProjectivePoint.BASE.multiplyAndAddUnsafe(point, u1, u2)?.toAffine();
  return R !== undefined && R.x === r && Number(R.y & 1n) === v - 27;
}

/**
 * Vote verification with a per-session-key cache: the first vote of a key is recovered (and its
 * public key kept); later votes are verified against the cached point, about twice as fast as
 * recovery. A fast-path failure falls back to recovery, so the cache never changes a verdict.
 */
export class VoteVerifier {
  private readonly points = new Map<string, Point>();

  constructor(private readonly domain: CambrianDomain) {}

  async verify(
    vote: { taskId: Hex; digest: Hex; worker: Hex },
    sessionKey: Hex,
    voteSig: Hex,
  ): Promise<void> {
    checkShape(voteSig, 'voteSig');
    const key = sessionKey.toLowerCase();
    const cached = this.points.get(key);
    const hash = hashResultVote(this.domain, vote);
    if (cached && verifyWithPoint(cached, hash, voteSig)) return;
    let publicKey: Hex;
    try {
      publicKey = await recoverPublicKey({ hash, signature: voteSig });
    } catch {
      throw new Refusal(400, 'bad signature: voteSig does not recover');
    }
    if (!isAddressEqual(publicKeyToAddress(publicKey), sessionKey)) {
      throw new Refusal(401, 'bad signature: vote not signed by the session key');
    }
    if (!cached) {
      if (this.points.size > 100_000) this.points.clear();
      this.points.set(key, secp256k1.ProjectivePoint.fromHex(hexToBytes(publicKey)));
    }
  }
}
