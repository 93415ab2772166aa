/**
 * The `settle` calldata (docs/CONTRACT.md, "ABI"): the paying search, a sorted workers table, the grants the chain
 * has not cached, the packed task records and the batch's compressed specs. Encoding for the coordinator
 * and the gas bench, decoding for the leaderboard and watchers. Browser-safe: viem and Web Streams only.
 */
import {
  type Address,
  bytesToHex,
  concatHex,
  getAddress,
  type Hex,
  hexToBytes,
  isAddressEqual,
  numberToHex,
  size,
  sliceHex,
} from 'viem';
import type { SignedVote } from '../protocol/eip712.ts';
import { type ResultMetrics, resultDigest } from '../protocol/result.ts';

/** One task as the settler hands it over: the agreed metrics, the votes to send, optionally a verdict. */
export interface SettlementInput extends ResultMetrics {
  /** The coordinator's task sequence number: the key of the contract's settled bitmap. */
  seq: bigint;
  votes: readonly SignedVote[];
  /** The referee's RefereeVerdict(taskId, digest) signature: settles the digest whatever the vote count. */
  verdictSig?: Hex;
  /** The task's canonical spec (RFC 8785 JSON), recorded in calldata for the chain-only leaderboard. */
  spec?: string;
}

export interface GrantInput {
  worker: Address;
  sessionKey: Address;
  expiresAt: bigint;
  signature: Hex;
}

/** `settle`'s five arguments: the paying search, the workers table, grants, task records, specs. */
export type SettleArgs = readonly [Hex, readonly Address[], readonly GrantInput[], Hex, Hex];

/** The search id of the operator's own pool and terms (`fund`, `rewardPerTask`): the coordinator's own tasks. */
export const OPERATOR_SEARCH: Hex = `0x${'0'.repeat(64)}`;

/** The grant the chain holds for a worker (sessionKey 0 when none). */
export type CachedGrantOf = (worker: Address) => { sessionKey: Address; expiresAt: bigint } | undefined;

const MAX_WORKERS = 256;
const SIG_BYTES = 65;
const HAS_VERDICT = 1;
/** Version byte of the specs blob: deflate-raw of the canonical specs joined by '\n'. */
const SPECS_DEFLATE_V1 = '0x01';

/**
 * Builds settle's arguments for a batch of `searchId`'s tasks (every task of a batch is paid from that
 * search's pool). Grants are sent only for workers whose grant `cached` does not already hold.
 */
export async function encodeSettleArgs(
  batch: readonly SettlementInput[],
  cached: CachedGrantOf = () => undefined,
  searchId: Hex = OPERATOR_SEARCH,
): Promise<SettleArgs> {
  const workers = sortedWorkers(batch);
  const index = new Map(workers.map((w, i) => [w.toLowerCase(), i]));
  const tasks = concatHex(batch.map((task) => encodeTask(task, index)));
  return [searchId, workers, grantsToSend(batch, cached), tasks, await encodeSpecs(batch)];
}

function sortedWorkers(batch: readonly SettlementInput[]): Address[] {
  const all = new Set(batch.flatMap((t) => t.votes.map((v) => v.worker.toLowerCase())));
  const workers = [...all].sort().map((w) => getAddress(w));
  if (workers.length > MAX_WORKERS) throw new Error(`a batch may name at most ${MAX_WORKERS} workers`);
  return workers;
}

/** One grant per worker (the latest-expiring one its votes carry), unless the chain has it cached. */
function grantsToSend(batch: readonly SettlementInput[], cached: CachedGrantOf): GrantInput[] {
  const best = new Map<string, GrantInput>();
  for (const vote of batch.flatMap((t) => t.votes)) {
    if (isAddressEqual(vote.sessionKey, vote.worker) || size(vote.grantSig) === 0) continue;
    const key = vote.worker.toLowerCase();
    const seen = best.get(key);
    if (!seen || vote.sessionExpiry > seen.expiresAt) {
      best.set(key, {
        worker: getAddress(vote.worker),
        sessionKey: getAddress(vote.sessionKey),
        expiresAt: vote.sessionExpiry,
        signature: vote.grantSig,
      });
    }
  }
  return [...best.values()]
    .filter((g) => {
      const have = cached(g.worker);
      return !have || !isAddressEqual(have.sessionKey, g.sessionKey) || have.expiresAt !== g.expiresAt;
    })
    .sort((a, b) => (a.worker.toLowerCase() < b.worker.toLowerCase() ? -1 : 1));
}

function encodeTask(task: SettlementInput, index: Map<string, number>): Hex {
  const digest = resultDigest(task);
  const groups = groupVotes(task.votes, digest);
  if (task.verdictSig && size(task.verdictSig) !== SIG_BYTES)
    throw new Error('verdict signature must be 65 bytes');
  // The head (27 bytes, one word for the contract), then the three hashes.
  const parts: Hex[] = [
    numberToHex(task.seq, { size: 8 }),
    numberToHex(task.valCorrect, { size: 4 }),
    numberToHex(task.valCount, { size: 4 }),
    numberToHex(BigInt.asUintN(64, task.valLoss), { size: 8 }),
    numberToHex(task.verdictSig ? HAS_VERDICT : 0, { size: 1 }),
    numberToHex(groups.length - 1, { size: 1 }),
    numberToHex(groups[0].votes.length, { size: 1 }),
    task.taskId,
    task.weightsHash,
    task.traceRoot,
  ];
  if (task.verdictSig) parts.push(task.verdictSig);
  groups.forEach((group, g) => {
    if (g > 0) parts.push(group.digest, numberToHex(group.votes.length, { size: 1 }));
    for (const vote of group.votes) {
      if (size(vote.voteSig) !== SIG_BYTES)
        throw new Error(`vote of ${vote.worker} must be signed with 65 bytes`);
      parts.push(vote.voteSig, numberToHex(index.get(vote.worker.toLowerCase())!, { size: 1 }));
    }
  });
  return concatHex(parts);
}

/** Group 0 holds the votes for the settled digest (possibly none); later groups one other digest each. */
function groupVotes(votes: readonly SignedVote[], digest: Hex) {
  const groups = [{ digest, votes: [] as SignedVote[] }];
  for (const vote of votes) {
    let group = groups.find((g) => g.digest.toLowerCase() === vote.digest.toLowerCase());
    if (!group) {
      group = { digest: vote.digest, votes: [] };
      groups.push(group);
    }
    group.votes.push(vote);
  }
  if (groups.length > 255) throw new Error('too many digests in one task');
  return groups;
}

// ------------------------------------------------------------------------- specs blob

async function encodeSpecs(batch: readonly SettlementInput[]): Promise<Hex> {
  if (batch.every((t) => !t.spec)) return '0x';
  const text = batch.map((t) => t.spec ?? '').join('\n');
  return concatHex([
    SPECS_DEFLATE_V1,
    bytesToHex(await transform(new TextEncoder().encode(text), 'compress')),
  ]);
}

/** The batch's specs in task order ('' where the coordinator sent none). */
export async function decodeSpecs(specs: Hex, tasks: number): Promise<string[]> {
  if (size(specs) === 0) return Array(tasks).fill('');
  if (sliceHex(specs, 0, 1) !== SPECS_DEFLATE_V1) throw new Error('unknown specs encoding');
  const text = new TextDecoder().decode(await transform(hexToBytes(sliceHex(specs, 1)), 'decompress'));
  const lines = text.split('\n');
  if (lines.length !== tasks) throw new Error(`specs blob holds ${lines.length} specs for ${tasks} tasks`);
  return lines;
}

async function transform(bytes: Uint8Array, direction: 'compress' | 'decompress'): Promise<Uint8Array> {
  const stream =
    direction === 'compress' ? new CompressionStream('deflate-raw') : new DecompressionStream('deflate-raw');
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

// ------------------------------------------------------------------------- decoding

export interface DecodedVote {
  worker: Address;
  digest: Hex;
  voteSig: Hex;
}

export interface DecodedTask extends ResultMetrics {
  seq: bigint;
  digest: Hex;
  verdictSig?: Hex;
  votes: DecodedVote[];
}

/** Parses packed task records (the contract's layout) back into tasks. */
export function decodeTasks(workers: readonly Address[], tasks: Hex): DecodedTask[] {
  const bytes = hexToBytes(tasks);
  const out: DecodedTask[] = [];
  let p = 0;
  const take = (n: number): Hex => {
    if (p + n > bytes.length) throw new Error('truncated task record');
    const hex = bytesToHex(bytes.subarray(p, p + n));
    p += n;
    return hex;
  };
  const num = (n: number) => BigInt(take(n));
  while (p < bytes.length) {
    const seq = num(8);
    const valCorrect = Number(num(4));
    const valCount = Number(num(4));
    const valLoss = BigInt.asIntN(64, num(8));
    const flags = Number(num(1));
    const groups = 1 + Number(num(1));
    const votes0 = Number(num(1));
    const metrics: ResultMetrics = {
      taskId: take(32),
      valCorrect,
      valCount,
      valLoss,
      weightsHash: take(32),
      traceRoot: take(32),
    };
    const digest = resultDigest(metrics);
    const verdictSig = flags & HAS_VERDICT ? take(SIG_BYTES) : undefined;
    const votes: DecodedVote[] = [];
    for (let g = 0; g < groups; g++) {
      const groupDigest = g === 0 ? digest : take(32);
      const count = g === 0 ? votes0 : Number(num(1));
      for (let v = 0; v < count; v++) {
        const voteSig = take(SIG_BYTES);
        const worker = workers[Number(num(1))];
        if (!worker) throw new Error('vote names a worker outside the table');
        votes.push({ worker, digest: groupDigest, voteSig });
      }
    }
    out.push({ ...metrics, seq, digest, verdictSig, votes });
  }
  return out;
}
