/**
 * The leaderboard rebuilt from the chain alone (no coordinator): every settled task's metrics and digest
 * from its batch's calldata, its spec from the batch's compact specs blob (checked: keccak256 of the
 * canonical spec must be the task id the votes signed), minus voided batches, ranked like the
 * coordinator's (src/coordinator/views.ts): accuracy, then validation loss, then task sequence.
 */
import type { Address, Hash, Hex } from 'viem';
import { specCounts } from '../nas/spaces.ts';
import { type AnyTaskSpec, type HiddenLayer, isV2, parseAnyTaskSpec, taskIdOf } from '../protocol/spec.ts';
import { type BlockRange, type ChainPublicClient, readSettledEvents, settlementAbi } from './client.ts';

/** A ranked model: what the coordinator's leaderboard and the one rebuilt from the chain share. */
export interface RankedModel {
  rank: number;
  taskId: Hex;
  spec: AnyTaskSpec;
  /** An MLP's hidden layers (empty for a conv model: see `spec.model.layers`). */
  hidden: HiddenLayer[];
  params: number;
  flops: number;
  steps: number;
  valCorrect: number;
  valCount: number;
  accuracy: number;
  valLoss: string;
  weightsHash: Hex;
  digest: Hex;
}

export interface ChainLeaderboardEntry extends RankedModel {
  seq: bigint;
  txHash: Hash;
  blockNumber: bigint;
}

export interface ChainLeaderboard {
  entries: ChainLeaderboardEntry[];
  /** Settled tasks left out, with why (no spec recorded, a spec that does not hash to the task id). */
  unverified: { taskId: Hex; reason: string }[];
}

type Client = Pick<ChainPublicClient, 'getContractEvents' | 'getTransaction'>;

export async function chainLeaderboard(
  client: Client,
  settlement: Address,
  range: BlockRange = {},
): Promise<ChainLeaderboard> {
  const [settled, voided] = await Promise.all([
    readSettledEvents(client, settlement, range),
    client.getContractEvents({
      address: settlement,
      abi: settlementAbi,
      eventName: 'BatchVoided',
      fromBlock: range.fromBlock ?? 0n,
      toBlock: range.toBlock,
    }),
  ]);
  const voidedBatches = new Set(voided.map((v) => v.args.batchId));
  const seen = new Set<Hex>();
  const unverified: ChainLeaderboard['unverified'] = [];
  const rows: Omit<ChainLeaderboardEntry, 'rank'>[] = [];
  for (const e of settled) {
    if (voidedBatches.has(e.batchId) || seen.has(e.taskId)) continue;
    seen.add(e.taskId);
    const spec = verifiedSpec(e.spec, e.taskId);
    if (typeof spec === 'string') {
      unverified.push({ taskId: e.taskId, reason: spec });
      continue;
    }
    const { params, flops } = specCounts(spec);
    rows.push({
      seq: e.seq,
      taskId: e.taskId,
      spec,
      hidden: isV2(spec) ? [] : spec.model.hidden,
      params,
      flops,
      steps: spec.training.steps,
      valCorrect: e.valCorrect,
      valCount: e.valCount,
      accuracy: e.valCorrect / e.valCount,
      valLoss: e.valLoss.toString(),
      weightsHash: e.weightsHash,
      digest: e.digest,
      txHash: e.txHash,
      blockNumber: e.blockNumber,
    });
  }
  rows.sort(
    (a, b) =>
      b.accuracy - a.accuracy || Number(BigInt(a.valLoss) - BigInt(b.valLoss)) || Number(a.seq - b.seq),
  );
  return { entries: rows.map((r, i) => ({ rank: i + 1, ...r })), unverified };
}

/** The spec if it parses and hashes to the task id, else why not. */
function verifiedSpec(text: string, taskId: Hex): AnyTaskSpec | string {
  if (!text) return 'no spec recorded';
  let spec: AnyTaskSpec;
  try {
    spec = parseAnyTaskSpec(JSON.parse(text));
  } catch {
    return 'recorded spec does not parse';
  }
  return taskIdOf(spec) === taskId ? spec : 'recorded spec does not hash to the task id';
}
