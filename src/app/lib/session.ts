/**
 * The contributor's session key (DESIGN §3): generated in the engine Worker and kept only in its
 * memory, authorised by one wallet signature over a SessionGrant, then used to sign every ResultVote
 * without a wallet pop-up. The page holds only the key's address.
 */
import type { Address, Hex } from 'viem';
import type { CambrianDomain, SessionGrant } from '../../protocol/eip712.ts';

export { cambrianDomain, sessionGrantTypedData } from '../../protocol/eip712.ts';

export interface GrantedSession {
  grant: SessionGrant;
  grantSig: Hex;
  domain: CambrianDomain;
}

/** Signs with the session key (the engine Worker in the app, a local account in tests). */
export interface SessionSigner {
  newSessionKey(): Promise<Address>;
  signVote(
    domain: CambrianDomain,
    vote: { taskId: Hex; digest: Hex; worker: Address },
    expected: Address,
  ): Promise<Hex>;
}

/** A fresh session key and the grant the wallet is asked to sign for it. */
export async function newSessionGrant(
  signer: SessionSigner,
  worker: Address,
  lifetimeSeconds = 24 * 3600,
): Promise<SessionGrant> {
  const sessionKey = await signer.newSessionKey();
  return { worker, sessionKey, expiresAt: BigInt(Math.floor(Date.now() / 1000) + lifetimeSeconds) };
}

/** The session key's signature over ResultVote(taskId, digest, worker). */
export function signVote(
  signer: SessionSigner,
  session: GrantedSession,
  taskId: Hex,
  digest: Hex,
): Promise<Hex> {
  return signer.signVote(
    session.domain,
    { taskId, digest, worker: session.grant.worker },
    session.grant.sessionKey,
  );
}

/** The grant as POST /sessions takes it (expiresAt in unix seconds). */
export function grantJson(grant: SessionGrant) {
  return { worker: grant.worker, sessionKey: grant.sessionKey, expiresAt: Number(grant.expiresAt) };
}
