import { type Account, type Address, type Hex, isAddress, isHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvilAccount, EMBEDDED_ROLES } from '../../chain/accounts.ts';
import { type AnvilNode, startAnvil } from '../../chain/anvil.ts';
import { connectChain, DEFAULT_EPOCH_SECONDS, deploySettlement } from '../../chain/client.ts';
import { EMBEDDED_EPOCH_SECONDS } from '../../chain/embedded.ts';
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
  help: `usage: cambrian chain [--port P] [--rpc URL] [--key HEX] [--admin ADDR] [--coordinator ADDR]
                      [--referee ADDR] [--reward WEI] [--quorum N] [--cap WEI] [--epoch S]
                      [--fund WEI] [--json]

Starts anvil (from the @foundry-rs/anvil package) on port P (default: a random free port), waits
until it answers, deploys the Settlement contract, funds its reward pool, prints one JSON line
  {"rpcUrl","chainId","settlement","admin","coordinator","referee","epochSeconds","deployBlock"}
and runs until SIGINT/SIGTERM, then stops anvil. With --rpc URL it deploys to that chain instead,
prints the line and exits.
  --key HEX            deployer private key; default $CAMBRIAN_DEPLOYER_KEY, else anvil's first dev
                       account (a published key: only for dev chains)
  --admin ADDR         DEFAULT_ADMIN_ROLE: terms, cap, roles, voids (default: the deployer; a multisig
                       or timelock in production)
  --coordinator ADDR   COORDINATOR_ROLE, may settle; must differ from the admin (default on the
                       embedded chain: dev account 1; required with --rpc)
  --referee ADDR       REFEREE_ROLE, signs verdicts (default on the embedded chain: dev account 2)
  --reward WEI         reward per settled task, shared by its majority (default 10^15)
  --quorum N           minimum agreeing votes per task, at least 2 (default 2)
  --cap WEI            most the coordinator may credit per epoch (default 1,000 rewards)
  --epoch S            epoch length in seconds (default 86400; 2 on the embedded chain)
  --fund WEI           initial reward pool (default 100 ether on the embedded chain, 0 with --rpc)
  --json               print only the JSON line`,
  async run(argv) {
    const opts = parseOptions(argv, {
      port: { type: 'string' },
      rpc: { type: 'string' },
      key: { type: 'string' },
      admin: { type: 'string' },
      coordinator: { type: 'string' },
      referee: { type: 'string' },
      cap: { type: 'string' },
      epoch: { type: 'string' },
      reward: { type: 'string' },
      quorum: { type: 'string' },
      fund: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (opts.rpc && opts.port)
      throw new Error('--port starts a local chain; it cannot be combined with --rpc');
    for (const flag of ['admin', 'coordinator', 'referee'] as const) {
      const value = opts[flag];
      if (value !== undefined && !isAddress(value)) throw new Error(`--${flag} is not an address`);
    }
    if (opts.rpc && !opts.coordinator)
      throw new Error('--rpc needs --coordinator (an account other than the admin)');
    const account = deployer(opts.key);
    const port = intOption(opts.port, '--port', 0);
    const rewardPerTask = weiOption(opts.reward, '--reward', 10n ** 15n);
    const minQuorum = intOption(opts.quorum, '--quorum', 2, 2);
    const epochSeconds = intOption(
      opts.epoch,
      '--epoch',
      opts.rpc ? DEFAULT_EPOCH_SECONDS : EMBEDDED_EPOCH_SECONDS,
      1,
    );
    const epochCap = weiOption(opts.cap, '--cap', rewardPerTask * 1_000n);
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
      const embedded = (index: number) => (opts.rpc ? undefined : anvilAccount(index).address);
      const deployment = await deploySettlement(conn, {
        admin: (opts.admin as Address | undefined) ?? account.address,
        coordinator: ((opts.coordinator as Address | undefined) ?? embedded(EMBEDDED_ROLES.coordinator))!,
        referee: (opts.referee as Address | undefined) ?? embedded(EMBEDDED_ROLES.referee),
        rewardPerTask,
        minQuorum,
        epochCap,
        epochSeconds,
        fund,
      });
      console.log(
        JSON.stringify({
          rpcUrl: conn.rpcUrl,
          chainId: conn.chain.id,
          settlement: deployment.address,
          admin: deployment.admin,
          coordinator: deployment.coordinator,
          referee: deployment.referee ?? null,
          epochSeconds,
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
