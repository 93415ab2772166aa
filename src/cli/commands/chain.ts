import { type Account, type Address, type Hex, isAddress, isHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvilAccount } from '../../chain/accounts.ts';
import { type AnvilNode, startAnvil } from '../../chain/anvil.ts';
import { connectChain, deploySettlement } from '../../chain/client.ts';
import { type Command, intOption, parseOptions } from '../command.ts';

const ETHER = 10n ** 18n;

function weiOption(value: string | undefined, flag: string, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value))
    throw new Error(`${flag} must be an amount in wei (a non-negative integer), got '${value}'`);
  return BigInt(value);
}

/** --key, else $CAMBRIAN_DEPLOYER_KEY, else anvil's first dev account (published key: dev chains only). */
function deployer(key: string | undefined): Account {
  const hex = key ?? process.env.CAMBRIAN_DEPLOYER_KEY;
  if (hex === undefined) return anvilAccount(0);
  if (!isHex(hex) || hex.length !== 66)
    throw new Error('the deployer key must be 0x followed by 64 hex digits');
  return privateKeyToAccount(hex as Hex);
}

export const command: Command = {
  name: 'chain',
  summary: 'start the embedded chain (anvil) and deploy + fund the Settlement contract',
  help: `usage: cambrian chain [--port P] [--rpc URL] [--key HEX] [--coordinator ADDRESS]
                      [--reward WEI] [--quorum N] [--fund WEI] [--json]

Starts anvil (from the @foundry-rs/anvil package) on port P (default: a random free port), waits
until it answers, deploys the Settlement contract, funds its reward pool, prints one JSON line
  {"rpcUrl","chainId","settlement","coordinator","admin","deployBlock"}
and runs until SIGINT/SIGTERM, then stops anvil. With --rpc URL it deploys to that chain instead,
prints the line and exits.
  --key HEX            deployer (and owner) private key; default $CAMBRIAN_DEPLOYER_KEY, else anvil's
                       first dev account (a published key: only for dev chains)
  --coordinator ADDR   the account allowed to settle (default: the deployer)
  --reward WEI         reward per settled task, shared by its majority (default 10^15)
  --quorum N           minimum agreeing votes per task (default 2)
  --fund WEI           initial reward pool (default 100 ether on the embedded chain, 0 with --rpc)
  --json               print only the JSON line`,
  async run(argv) {
    const opts = parseOptions(argv, {
      port: { type: 'string' },
      rpc: { type: 'string' },
      key: { type: 'string' },
      coordinator: { type: 'string' },
      reward: { type: 'string' },
      quorum: { type: 'string' },
      fund: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (opts.rpc && opts.port)
      throw new Error('--port starts a local chain; it cannot be combined with --rpc');
    if (opts.coordinator && !isAddress(opts.coordinator)) throw new Error(`--coordinator is not an address`);
    const account = deployer(opts.key);
    const port = intOption(opts.port, '--port', 0);
    const rewardPerTask = weiOption(opts.reward, '--reward', 10n ** 15n);
    const minQuorum = intOption(opts.quorum, '--quorum', 2, 1);
    const fund = weiOption(opts.fund, '--fund', opts.rpc ? 0n : 100n * ETHER);
    const log = (line: string) => {
      if (!opts.json) console.error(line);
    };

    let node: AnvilNode | undefined;
    try {
      if (!opts.rpc) {
        node = await startAnvil({ port });
        log(`anvil running at ${node.rpcUrl} (chain id ${node.chainId}, pid ${node.pid})`);
      }
      const conn = await connectChain(opts.rpc ?? node!.rpcUrl, account);
      const deployment = await deploySettlement(conn, {
        coordinator: opts.coordinator as Address | undefined,
        rewardPerTask,
        minQuorum,
        fund,
      });
      console.log(
        JSON.stringify({
          rpcUrl: conn.rpcUrl,
          chainId: conn.chain.id,
          settlement: deployment.address,
          coordinator: deployment.coordinator,
          admin: deployment.admin,
          deployBlock: Number(deployment.blockNumber),
        }),
      );
      log(
        `Settlement deployed at ${deployment.address}; reward pool ${fund} wei, ${rewardPerTask} wei per task`,
      );
      if (!node) return 0;

      log('press Ctrl-C to stop');
      const stopped = await new Promise<'signal' | 'anvil'>((resolve) => {
        process.once('SIGINT', () => resolve('signal'));
        process.once('SIGTERM', () => resolve('signal'));
        node!.exited.then(() => resolve('anvil'));
      });
      if (stopped === 'anvil') {
        console.error('cambrian chain: anvil exited unexpectedly');
        return 1;
      }
      return 0;
    } finally {
      await node?.stop();
    }
  },
};
