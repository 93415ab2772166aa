/**
 * anvil's well-known development accounts (the public "test test … junk" mnemonic). Only for the
 * embedded chain: these keys are published, never use them anywhere with real value.
 */
import type { HDAccount } from 'viem';
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
