/**
 * The embedded chain's deployment, shared by `cambrian up`, `cambrian chain` and the tests: the contract
 * deployed with the admin, coordinator and referee on separate dev accounts (EMBEDDED_ROLES).
 */
import type { Hex } from 'viem';
import { anvilAccount, anvilPrivateKey, EMBEDDED_ROLES } from './accounts.ts';
import { connectChain, type Deployment, deploySettlement } from './client.ts';

/** Dev chains use short epochs so credits become claimable within seconds (production: a day). */
export const EMBEDDED_EPOCH_SECONDS = 2;
/** A closed search settles ten minutes on dev chains (production: two hours), then its sponsor withdraws. */
export const EMBEDDED_SEARCH_GRACE_SECONDS = 600;

export interface EmbeddedDeployment {
  deployment: Deployment;
  chainId: number;
  rpcUrl: string;
  /** The settler's keys (published dev keys: only for dev chains). */
  coordinatorKey: Hex;
  refereeKey: Hex;
}

export interface EmbeddedOptions {
  rewardPerTask: bigint;
  minQuorum: number;
  fund: bigint;
  epochCap?: bigint;
  epochSeconds?: number;
  searchGraceSeconds?: number;
}

export async function deployEmbedded(rpcUrl: string, options: EmbeddedOptions): Promise<EmbeddedDeployment> {
  const admin = anvilAccount(EMBEDDED_ROLES.admin);
  const conn = await connectChain(rpcUrl, admin);
  const deployment = await deploySettlement(conn, {
    admin: admin.address,
    coordinator: anvilAccount(EMBEDDED_ROLES.coordinator).address,
    referee: anvilAccount(EMBEDDED_ROLES.referee).address,
    epochSeconds: EMBEDDED_EPOCH_SECONDS,
    searchGraceSeconds: EMBEDDED_SEARCH_GRACE_SECONDS,
    epochCap: options.fund,
    ...options,
  });
  return {
    deployment,
    chainId: conn.chain.id,
    rpcUrl,
    coordinatorKey: anvilPrivateKey(EMBEDDED_ROLES.coordinator),
    refereeKey: anvilPrivateKey(EMBEDDED_ROLES.referee),
  };
}
