/**
 * Verifies the two signed types the coordinator accepts (DESIGN §3) under the contract's rules
 * (65 bytes, v ∈ {27, 28}, low s), so nothing the coordinator accepts can fail on chain for its
 * signatures. Failures are 4xx refusals naming what was wrong.
 */
import { type Hex, isAddressEqual } from 'viem';
import {
  type CambrianDomain,
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
