/**
 * The contributor's session key (DESIGN §3): generated in the page, kept only in memory, authorised by
 * one wallet signature over a SessionGrant, then used to sign every ResultVote without a wallet pop-up.
 */
import type { Address, Hex, LocalAccount } from 'viem';
import {
  type CambrianDomain,
  createSessionKey,
  resultVoteTypedData,
  type SessionGrant,
} from '../../protocol/eip712.ts';

export { cambrianDomain, sessionGrantTypedData } from '../../protocol/eip712.ts';

export interface GrantedSession {
  key: LocalAccount;
  grant: SessionGrant;
  grantSig: Hex;
  domain: CambrianDomain;
}

/** A fresh key (never persisted) and the grant the wallet is asked to sign for it. */
export function newSessionKey(worker: Address, lifetimeSeconds = 24 * 3600) {
  const key = createSessionKey();
  const grant: SessionGrant = {
    worker,
    sessionKey: key.address,
    expiresAt: BigInt(Math.floor(Date.now() / 1000) + lifetimeSeconds),
  };
  return { key, grant };
}

/** The session key's signature over ResultVote(taskId, digest, worker). */
export async function signVote(session: GrantedSession, taskId: Hex, digest: Hex): Promise<Hex> {
  if (!session.key.signTypedData) throw new Error('the session key cannot sign typed data');
  return session.key.signTypedData(
    resultVoteTypedData(session.domain, { taskId, digest, worker: session.grant.worker }),
  );
}

/** The grant as POST /sessions takes it (expiresAt in unix seconds). */
export function grantJson(grant: SessionGrant) {
  return { worker: grant.worker, sessionKey: grant.sessionKey, expiresAt: Number(grant.expiresAt) };
}
