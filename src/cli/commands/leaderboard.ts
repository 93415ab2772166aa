import { type Address, isAddress } from 'viem';
import { connectChain } from '../../chain/client.ts';
import { chainLeaderboard } from '../../chain/leaderboard.ts';
import { type AnyTaskSpec, isV2 } from '../../protocol/spec.ts';
import { type Command, intOption, parseOptions } from '../command.ts';

export const command: Command = {
  name: 'leaderboard',
  summary: 'rebuild the leaderboard from the chain alone (no coordinator)',
  help: `usage: cambrian leaderboard --from-chain --rpc URL --settlement ADDR [--from-block N] [--top N] [--json]

Reads every settled batch of the Settlement contract (its calldata and events), checks each task's
recorded spec against its task id, leaves out voided batches, and prints the leaderboard: rank,
architecture, validation accuracy and loss, digest and block. The coordinator's API serves the same
board from its database (/api/v1/leaderboard); this one needs nothing but an RPC endpoint.
  --rpc URL          chain RPC (default $CAMBRIAN_RPC_URL)
  --settlement ADDR  Settlement contract (default $CAMBRIAN_SETTLEMENT)
  --from-block N     first block to read (default 0; the contract's deployment block saves work)
  --top N            rows to print (default 20)
  --json             print the entries as JSON`,
  async run(argv) {
    const o = parseOptions(argv, {
      'from-chain': { type: 'boolean', default: false },
      rpc: { type: 'string' },
      settlement: { type: 'string' },
      'from-block': { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (!o['from-chain'])
      throw new Error('only --from-chain is supported here; the coordinator serves its own board');
    const rpc = o.rpc ?? process.env.CAMBRIAN_RPC_URL;
    const settlement = o.settlement ?? process.env.CAMBRIAN_SETTLEMENT;
    if (!rpc) throw new Error('--rpc URL is required (or $CAMBRIAN_RPC_URL)');
    if (!settlement || !isAddress(settlement)) throw new Error('--settlement must be the contract address');
    const conn = await connectChain(rpc);
    const board = await chainLeaderboard(conn.publicClient, settlement as Address, {
      fromBlock: BigInt(intOption(o['from-block'], '--from-block', 0, 0)),
    });
    const top = board.entries.slice(0, intOption(o.top, '--top', 20, 1));
    if (o.json) {
      console.log(JSON.stringify(board, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
      return 0;
    }
    console.log('rank  val acc   val loss (Q16)  layers                         digest       block');
    for (const e of top) {
      const layers = layerSummary(e.spec);
      console.log(
        `${String(e.rank).padStart(4)}  ${(100 * e.accuracy).toFixed(2).padStart(6)}%  ${e.valLoss.padStart(14)}  ${layers.padEnd(29)}  ${e.digest.slice(0, 10)}… ${e.blockNumber}`,
      );
    }
    for (const u of board.unverified) console.error(`left out ${u.taskId}: ${u.reason}`);
    return 0;
  },
};

/** A compact layer list: `128r 64g+` for an MLP, `c8k3r mp c16k3r flat 64r` for a conv model. */
function layerSummary(spec: AnyTaskSpec): string {
  if (!isV2(spec))
    return spec.model.hidden.map((h) => `${h.units}${h.activation[0]}${h.residual ? '+' : ''}`).join(' ');
  return spec.model.layers
    .map((l) => {
      if (l.op === 'conv')
        return `c${l.channels}k${l.kernel}${l.stride === 2 ? 's2' : ''}${l.activation[0]}${l.residual ? '+' : ''}`;
      if (l.op === 'dense') return `${l.units}${l.activation[0]}${l.residual ? '+' : ''}`;
      return l.op === 'maxpool' ? 'mp' : l.op === 'flatten' ? 'flat' : 'gap';
    })
    .join(' ');
}
