import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSettlementModule,
  compilerVersion,
  ROOT,
  SETTLEMENT_MODULE,
  SETTLEMENT_SOURCE,
  writeSettlementModule,
} from '../../chain/build.ts';
import { type Command, parseOptions } from '../command.ts';

export const command: Command = {
  name: 'build-contracts',
  summary: 'compile contracts/Settlement.sol (solc-js) into src/chain/generated/settlement.ts',
  help: `usage: cambrian build-contracts [--check]

Compiles ${SETTLEMENT_SOURCE} with the pinned solc-js (no compiler download), resolving
@openzeppelin/contracts from node_modules, and writes the typed module (ABI as const + bytecode)
to src/chain/generated/settlement.ts. The build is reproducible: same sources, same bytes.
  --check   do not write; exit 1 if the committed module is out of date`,
  async run(argv) {
    const opts = parseOptions(argv, { check: { type: 'boolean', default: false } });
    if (opts.check) {
      const upToDate = readFileSync(join(ROOT, SETTLEMENT_MODULE), 'utf8') === buildSettlementModule().text;
      console.log(upToDate ? `${SETTLEMENT_MODULE} is up to date` : `${SETTLEMENT_MODULE} is OUT OF DATE`);
      return upToDate ? 0 : 1;
    }
    const { path, contract, changed } = writeSettlementModule();
    for (const warning of contract.warnings) console.error(warning);
    console.log(
      `${changed ? 'wrote' : 'unchanged'} ${path} (solc ${compilerVersion()}, runtime ${contract.deployedSize} bytes)`,
    );
    return 0;
  },
};
