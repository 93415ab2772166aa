/**
 * anvil's well-known development accounts (the public "test test … junk" mnemonic). Only for the
 * embedded chain: these keys are published, never use them anywhere with real value.
 */
import { type HDAccount, type Hex, toHex } from 'viem';
import { mnemonicToAccount } from 'viem/accounts';

export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk';
/** anvil funds this many accounts by default. */
export const ANVIL_ACCOUNT_COUNT = 10;

export function anvilAccount(index = 0): HDAccount {
  if (!Number.isInteger(index) || index < 0 || index >= ANVIL_ACCOUNT_COUNT) {
    throw new Error(`anvil dev account index must be 0..${ANVIL_ACCOUNT_COUNT - 1}`);
  }
  return mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index });
}

export function anvilPrivateKey(index: number): Hex {
  return toHex(anvilAccount(index).getHdKey().privateKey!);
}

/**
 * Who holds which role on the embedded chain (dev account indices): the deployer is the admin, and the
 * coordinator and the referee have keys of their own, so a leaked coordinator key does not own the
 * contract or sign verdicts.
 */
export const EMBEDDED_ROLES = { admin: 0, coordinator: 1, referee: 2 } as const;
