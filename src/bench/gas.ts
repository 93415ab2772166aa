/**
 * `cambrian bench gas`: Settlement gas per task, measured on a fresh embedded anvil chain.
 *
 * For batches of 1, 10 and 50 tasks with 2 and 3 agreeing votes each, from first-time workers (every
 * vote from a new worker: grant signature verified and cached, fresh account slot) and from returning
 * workers (a pool of workers whose grants are cached and who omit grantSig). Prints a table, writes
 * JSON under bench-results/ and the table to docs/GAS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeFunctionData,
  encodeAbiParameters,
  type Hex,
  hexToBytes,
  keccak256,
  type LocalAccount,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvilAccount } from '../chain/accounts.ts';
import { startAnvil } from '../chain/anvil.ts';
import { ROOT } from '../chain/build.ts';
import {
  claim,
  connectChain,
  deploySettlement,
  type SettleArgs,
  type SettlementInput,
  type SigningConnection,
  settleBatch,
  settlementAbi,
} from '../chain/client.ts';
import { openSearch } from '../chain/searches.ts';
import { parseOptions } from '../cli/command.ts';
import {
  type CambrianDomain,
  cambrianDomain,
  castVote,
  openSession,
  type WorkerSession,
} from '../protocol/eip712.ts';
import { type ResultMetrics, resultDigest } from '../protocol/result.ts';
import { canonicalSpec, type TaskSpec, TaskSpecSchema, taskIdOf } from '../protocol/spec.ts';

export const help = `usage: cambrian bench gas [--sizes 1,10,50] [--votes 2,3] [--workers first-time,returning]
                         [--payer operator,search] [--pool N] [--out DIR] [--no-doc] [--json]

Measures Settlement.settle gas per task on a fresh embedded anvil chain: batches of each size,
2 and 3 agreeing votes, first-time vs returning workers (grant cached, grantSig omitted).
  --sizes LIST   batch sizes (default 1,10,50)
  --votes LIST   agreeing votes per task (default 2,3)
  --workers LIST first-time, returning or both (default both)
  --payer LIST   operator (the operator's pool), search (a sponsor's search pool) or both (default both)
  --pool N       returning workers drawn round-robin from a pool of N (default 16)
  --out DIR      where the JSON goes (default bench-results)
  --no-doc       do not rewrite docs/GAS.md
  --json         print the JSON instead of the table`;

export type WorkerKind = 'first-time' | 'returning';
/** Whose pool pays the batch: the operator's (`fund`) or a sponsor's search (`openSearch`). */
export type Payer = 'operator' | 'search';

export interface GasRow {
  votes: number;
  workers: WorkerKind;
  payer: Payer;
  batch: number;
  gasUsed: number;
  perTask: number;
  /** (gas(N) − gas(1)) / (N − 1): what one more task in the batch costs. */
  marginal?: number;
  /** Of perTask, what the calldata costs at 4/16 gas per zero/non-zero byte. */
  calldataPerTask: number;
  /** Calldata gas per task, field by field (see `calldataByField`). */
  fields: Record<string, number>;
  /** The whole transaction's gas by kind of work (see `profileOf`). */
  profile: GasProfile;
}

const REWARD = 10n ** 15n;

function account(label: string): LocalAccount {
  return privateKeyToAccount(keccak256(toHex(label)));
}

/** A realistic spec: one search's tasks differ in architecture and seeds (what the calldata carries). */
function specOf(n: number): TaskSpec {
  const units = [16, 32, 64, 128][n % 4];
  const hidden = Array.from({ length: 1 + (n % 3) }, (_, i) => ({
    units,
    activation: (['relu', 'gelu', 'leaky_relu'] as const)[(n + i) % 3],
    residual: i > 0,
  }));
  return TaskSpecSchema.parse({
    v: 1,
    dataset: { name: 'mnist', sha256: keccak256(toHex('mnist')) },
    split: { seed: 1, validation: 2000 },
    model: { inputs: 784, classes: 10, hidden },
    training: {
      optimizer: 'sgd',
      batch: 32,
      steps: 600,
      seed: 1000 + n,
      learningRateQ16: [3277, 6554, 13107][n % 3],
      momentumQ16: 58982,
      weightDecayQ24: 0,
    },
    checkpointEvery: 100,
  });
}

function labelNumber(label: string): number {
  return Number.parseInt(keccak256(toHex(label)).slice(2, 8), 16);
}

function metrics(label: string): ResultMetrics {
  return {
    taskId: taskIdOf(specOf(labelNumber(label))),
    valCorrect: 9312,
    valCount: 10000,
    valLoss: 2_748_123_456n,
    weightsHash: keccak256(toHex(`weights ${label}`)),
    traceRoot: keccak256(toHex(`trace ${label}`)),
  };
}

function calldataGas(input: Hex): number {
  let gas = 0;
  for (const byte of hexToBytes(input)) gas += byte === 0 ? 4 : 16;
  return gas;
}

async function sessionsFor(
  domain: CambrianDomain,
  labels: string[],
  expiresAt: bigint,
): Promise<WorkerSession[]> {
  return Promise.all(
    labels.map((label) => {
      const worker = account(`worker ${label}`);
      return openSession(worker, worker.address, domain, expiresAt, account(`session ${label}`));
    }),
  );
}

async function settlementOf(
  domain: CambrianDomain,
  label: string,
  voters: WorkerSession[],
  omitGrant: boolean,
): Promise<SettlementInput> {
  const m = metrics(label);
  const digest = resultDigest(m);
  const votes = await Promise.all(voters.map((s) => castVote(s, domain, m.taskId, digest, { omitGrant })));
  return { ...m, votes, seq: BigInt(nextSeq++), spec: canonicalSpec(specOf(labelNumber(label))) };
}

let nextSeq = 1;

export interface Scenario {
  votes: number;
  workers: WorkerKind;
  payer?: Payer;
  batch: number;
  pool: number;
}

/** One measurement on a fresh contract, so scenarios do not warm each other's storage. */
export async function measure(
  conn: SigningConnection,
  s: Scenario,
): Promise<{ gasUsed: number; calldata: number; fields: Record<string, number>; profile: GasProfile }> {
  const address = await deploy(conn);
  const domain = cambrianDomain(conn.chain.id, address);
  const expiresAt = (await conn.publicClient.getBlock()).timestamp + 86_400n;
  const tag = `${s.workers}/${s.votes}/${s.batch}`;
  const searchId = s.payer === 'search' ? await openBenchSearch(conn, address) : undefined;
  let batch: SettlementInput[];
  if (s.workers === 'first-time') {
    batch = [];
    for (let t = 0; t < s.batch; t++) {
      const labels = Array.from({ length: s.votes }, (_, v) => `${tag} ${t}.${v}`);
      batch.push(
        await settlementOf(domain, `${tag} ${t}`, await sessionsFor(domain, labels, expiresAt), false),
      );
    }
  } else {
    const pool = await sessionsFor(
      domain,
      Array.from({ length: s.pool }, (_, i) => `pool ${i}`),
      expiresAt,
    );
    // Warm-up: every pool worker settles once with its grant, so the grant is cached and its account exists.
    const warmup: SettlementInput[] = [];
    for (let i = 0; i < s.pool; i += s.votes) {
      const voters = Array.from({ length: s.votes }, (_, v) => pool[(i + v) % s.pool]);
      warmup.push(await settlementOf(domain, `${tag} warm ${i}`, voters, false));
    }
    await settleBatch(conn, address, warmup, { skipRejected: false, searchId });
    batch = [];
    for (let t = 0; t < s.batch; t++) {
      const voters = Array.from({ length: s.votes }, (_, v) => pool[(t * s.votes + v) % s.pool]);
      batch.push(await settlementOf(domain, `${tag} ${t}`, voters, true));
    }
  }
  const receipt = await settleBatch(conn, address, batch, { skipRejected: false, searchId });
  const tx = await conn.publicClient.getTransaction({ hash: receipt.txHash! });
  const fields = calldataByField(tx.input, batch);
  const calldata = calldataGas(tx.input);
  const gasUsed = Number(receipt.gasUsed);
  const profile = await profileOf(conn, receipt.txHash!, gasUsed, calldata);
  return { gasUsed, calldata, fields, profile };
}

/** Where a transaction's gas went, by kind of work (see `profileOf`). */
export type GasProfile = Record<ProfileItem, number>;

const PROFILE_ITEMS = [
  'signature checks (ecrecover)',
  'storage (SLOAD, SSTORE)',
  'hashing (KECCAK256)',
  'events (LOG)',
  'calldata (transaction data)',
  'calldata reads (CALLDATALOAD, CALLDATACOPY)',
  'account checks (EXTCODESIZE)',
  'rest (decoding, memory, arithmetic, jumps)',
  'base (21,000)',
] as const;
type ProfileItem = (typeof PROFILE_ITEMS)[number];

interface StructLog {
  op: string;
  gas: number;
  depth: number;
}

/**
 * Measures where a transaction's gas went from anvil's opcode trace: each step costs the gas left before
 * it minus the gas left at the next step of the same call depth (so a call's cost includes its callee).
 * A STATICCALL with no steps of its own is a precompile: here always ecrecover (OpenZeppelin's ECDSA).
 * Refunds are taken off `rest`, so the items add up to gasUsed.
 */
async function profileOf(conn: SigningConnection, hash: Hex, gasUsed: number, calldata: number) {
  // Plain fetch: the trace of a large batch passes viem's 10 MB response limit.
  const response = await fetch(conn.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'debug_traceTransaction',
      params: [hash, { disableStack: true, disableMemory: true, disableStorage: true }],
    }),
  });
  const { result: trace, error } = (await response.json()) as {
    result?: { structLogs: StructLog[] };
    error?: { message: string };
  };
  if (!trace) throw new Error(`debug_traceTransaction: ${error?.message ?? 'no result'}`);
  const profile = Object.fromEntries(PROFILE_ITEMS.map((k) => [k, 0])) as GasProfile;
  const logs = trace.structLogs;
  let counted = 0;
  for (let i = 0; i < logs.length; i++) {
    const step = logs[i];
    if (step.depth !== 1) continue;
    let next = i + 1;
    while (next < logs.length && logs[next].depth > step.depth) next++;
    const cost = next < logs.length ? step.gas - logs[next].gas : 0;
    const precompile = step.op === 'STATICCALL' && next === i + 1;
    profile[itemOf(step.op, precompile)] += cost;
    counted += cost;
  }
  profile['calldata (transaction data)'] = calldata;
  profile['base (21,000)'] = 21_000;
  // What the trace does not show: the last step's own cost and the refund; put it with the rest.
  profile['rest (decoding, memory, arithmetic, jumps)'] += gasUsed - 21_000 - calldata - counted;
  return profile;
}

function itemOf(op: string, precompile: boolean): ProfileItem {
  if (precompile) return 'signature checks (ecrecover)';
  if (op === 'SLOAD' || op === 'SSTORE') return 'storage (SLOAD, SSTORE)';
  if (op === 'KECCAK256') return 'hashing (KECCAK256)';
  if (op.startsWith('LOG')) return 'events (LOG)';
  if (op === 'CALLDATALOAD' || op === 'CALLDATACOPY') return 'calldata reads (CALLDATALOAD, CALLDATACOPY)';
  if (op === 'EXTCODESIZE') return 'account checks (EXTCODESIZE)';
  return 'rest (decoding, memory, arithmetic, jumps)';
}

/** A sponsor's search (dev account 2 its sponsor) with the operator's reward and as much in its pool. */
async function openBenchSearch(conn: SigningConnection, address: Hex): Promise<Hex> {
  const sponsor = await connectChain(conn.rpcUrl, anvilAccount(2));
  const searchId = keccak256(toHex(`bench search ${nextSeq}`));
  await openSearch(sponsor, address, searchId, {
    rewardPerTask: REWARD,
    epochCap: 10n ** 20n,
    fund: 10n ** 20n,
  });
  return searchId;
}

/** The coordinator is dev account 0 (it deploys and settles); the admin is dev account 1. */
async function deploy(conn: SigningConnection) {
  const { address } = await deploySettlement(conn, {
    admin: anvilAccount(1).address,
    coordinator: conn.wallet.account.address,
    rewardPerTask: REWARD,
    minQuorum: 2,
    epochCap: 10n ** 20n,
    fund: 10n ** 20n,
  });
  return address;
}

/**
 * Calldata gas per task of each part of settle's input, from the transaction's input: the packed
 * record field by field, the specs blob, the workers table, the grants and the ABI framing (selector,
 * offsets, lengths, padding).
 */
function calldataByField(input: Hex, batch: SettlementInput[]): Record<string, number> {
  const { args } = decodeFunctionData({ abi: settlementAbi, data: input });
  const [, workers, grants, tasks, specs] = args as unknown as SettleArgs;
  const per = (x: number) => Math.round(x / batch.length);
  const hex = (x: bigint | number, bytes: number) => toHex(x, { size: bytes });
  const field: Record<string, number> = {
    seq: 0,
    taskId: 0,
    'valCorrect, valCount, valLoss': 0,
    'weightsHash, traceRoot': 0,
    'flags, group and vote counts': 0,
    'worker indices': 0,
    'vote signatures': 0,
  };
  const index = new Map(workers.map((w, i) => [w.toLowerCase(), i]));
  for (const t of batch) {
    field.seq += calldataGas(hex(t.seq, 8));
    field.taskId += calldataGas(t.taskId);
    field['valCorrect, valCount, valLoss'] +=
      calldataGas(hex(t.valCorrect, 4)) +
      calldataGas(hex(t.valCount, 4)) +
      calldataGas(hex(BigInt.asUintN(64, t.valLoss), 8));
    field['weightsHash, traceRoot'] += calldataGas(t.weightsHash) + calldataGas(t.traceRoot);
    // flags (no verdict), other digest groups (none: every bench vote agrees), votes for the digest.
    field['flags, group and vote counts'] +=
      calldataGas(hex(0, 1)) + calldataGas(hex(0, 1)) + calldataGas(hex(t.votes.length, 1));
    for (const v of t.votes) {
      field['worker indices'] += calldataGas(hex(index.get(v.worker.toLowerCase()) ?? 0, 1));
      field['vote signatures'] += calldataGas(v.voteSig);
    }
  }
  const packed = Object.values(field).reduce((a, b) => a + b, 0);
  if (packed !== calldataGas(tasks)) throw new Error('calldata fields do not add up to the packed tasks');
  const parts = calldataGas(tasks) + calldataGas(specs) + workers.length * (12 * 4 + 20 * 16);
  const grantGas = grants.reduce(
    (g, x) =>
      g + calldataGas(encodeAbiParameters(GRANT_PARAMS, [x.worker, x.sessionKey, x.expiresAt, x.signature])),
    0,
  );
  const out = Object.fromEntries(Object.entries(field).map(([k, v]) => [k, per(v)]));
  return {
    ...out,
    'specs (deflate-raw canonical JSON)': per(calldataGas(specs)),
    'workers table': per(workers.length * (12 * 4 + 20 * 16)),
    grants: per(grantGas),
    'ABI framing': per(calldataGas(input) - parts - grantGas),
  };
}

const GRANT_PARAMS = [
  { type: 'address' },
  { type: 'address' },
  { type: 'uint64' },
  { type: 'bytes' },
] as const;

/** Gas of claim(): a returning worker credited by one settlement claims, with its own transaction. */
async function measureClaim(conn: SigningConnection): Promise<number> {
  const address = await deploy(conn);
  const domain = cambrianDomain(conn.chain.id, address);
  const expiresAt = (await conn.publicClient.getBlock()).timestamp + 86_400n;
  const voters = await sessionsFor(domain, ['claim 0', 'claim 1'], expiresAt);
  await settleBatch(conn, address, [await settlementOf(domain, 'claim', voters, false)], {
    skipRejected: false,
  });
  // Credits mature two epochs after they were made.
  await conn.publicClient.request({ method: 'evm_increaseTime', params: [toHex(2 * 86_400)] } as never);
  await conn.publicClient.request({ method: 'evm_mine', params: [] } as never);
  const worker = account('worker claim 0');
  await conn.publicClient.request({
    method: 'anvil_setBalance',
    params: [worker.address, toHex(10n ** 18n)],
  } as never);
  const workerConn = await connectChain(conn.rpcUrl, worker);
  return Number((await claim(workerConn, address)).gasUsed);
}

function table(rows: GasRow[]): string {
  const lines = [
    '| votes | workers | paid from | batch | gas used | gas / task | marginal gas / task | calldata gas / task |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const n = (x: number | undefined) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
  for (const r of rows) {
    lines.push(
      `| ${r.votes} | ${r.workers} | ${r.payer} | ${r.batch} | ${n(r.gasUsed)} | ${n(r.perTask)} | ${n(r.marginal)} | ${n(r.calldataPerTask)} |`,
    );
  }
  return lines.join('\n');
}

/** Calldata gas per task, field by field, of the largest returning-worker batches. */
function fieldTable(rows: GasRow[]): string {
  const largest = Math.max(...rows.map((r) => r.batch));
  const picked = rows.filter(
    (r) => r.workers === 'returning' && r.batch === largest && r.payer === rows[0].payer,
  );
  const fields = Object.keys(picked[0]?.fields ?? {});
  const lines = [
    `Calldata gas per task by field (returning workers, batch ${largest}; 4 gas per zero byte, 16 per other):`,
    '',
    `| field | ${picked.map((r) => `${r.votes} votes`).join(' | ')} |`,
    `| --- | ${picked.map(() => '---:').join(' | ')} |`,
  ];
  for (const f of fields)
    lines.push(`| ${f} | ${picked.map((r) => r.fields[f].toLocaleString('en-US')).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * Marginal gas per task by kind of work, for each vote count: (item at the largest batch − item at
 * batch 1) / (largest − 1), returning and first-time workers.
 */
function profileTable(rows: GasRow[]): string {
  const largest = Math.max(...rows.map((r) => r.batch));
  const pairs = rows
    .filter((r) => r.batch === largest && largest > 1 && r.payer === rows[0].payer)
    .map((r) => ({
      r,
      one: rows.find(
        (o) => o.batch === 1 && o.votes === r.votes && o.workers === r.workers && o.payer === r.payer,
      ),
    }))
    .filter((p): p is { r: GasRow; one: GasRow } => p.one !== undefined);
  if (pairs.length === 0) return '';
  const marginal = (p: { r: GasRow; one: GasRow }, k: ProfileItem) =>
    (p.r.profile[k] - p.one.profile[k]) / (largest - 1);
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const lines = [
    `Where the marginal gas per task goes (batch ${largest} − batch 1, from anvil's opcode trace of each`,
    "settle: each opcode's gas, a call's including its callee; a STATICCALL with no steps of its own is",
    'the ecrecover precompile; refunds and what the trace does not show are in the last row):',
    '',
    `| item | ${pairs.map((p) => `${p.r.votes} votes, ${p.r.workers}`).join(' | ')} |`,
    `| --- | ${pairs.map(() => '---:').join(' | ')} |`,
  ];
  for (const k of PROFILE_ITEMS) lines.push(`| ${k} | ${pairs.map((p) => n(marginal(p, k))).join(' | ')} |`);
  lines.push(
    `| **total (marginal gas / task)** | ${pairs.map((p) => `**${n((p.r.gasUsed - p.one.gasUsed) / (largest - 1))}**`).join(' | ')} |`,
  );
  return lines.join('\n');
}

function parseSizes(value: string): number[] {
  const sizes = value.split(',').map((x) => Number(x.trim()));
  if (sizes.some((x) => !Number.isInteger(x) || x < 1))
    throw new Error(`--sizes must list positive integers`);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

function parseList<T extends string>(value: string, allowed: readonly T[], flag: string): T[] {
  const picked = value.split(',').map((x) => x.trim());
  const bad = picked.find((x) => !allowed.includes(x as T));
  if (bad !== undefined) throw new Error(`${flag} takes ${allowed.join(', ')}; got ${bad}`);
  return allowed.filter((x) => picked.includes(x));
}

export async function run(argv: string[]): Promise<number> {
  const opts = parseOptions(argv, {
    sizes: { type: 'string', default: '1,10,50' },
    pool: { type: 'string', default: '16' },
    out: { type: 'string', default: 'bench-results' },
    votes: { type: 'string', default: '2,3' },
    workers: { type: 'string', default: 'first-time,returning' },
    payer: { type: 'string', default: 'operator,search' },
    'no-doc': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const sizes = parseSizes(opts.sizes);
  const voteCounts = parseList(opts.votes, ['2', '3'], '--votes').map(Number);
  const workerKinds = parseList(opts.workers, ['first-time', 'returning'] as const, '--workers');
  const payers = parseList(opts.payer, ['operator', 'search'] as const, '--payer');
  const pool = Number(opts.pool);
  if (!Number.isInteger(pool) || pool < 3) throw new Error('--pool must be an integer ≥ 3');

  // Steps tracing: debug_traceTransaction then returns the opcode trace the profile reads.
  const node = await startAnvil({ args: ['--steps-tracing'] });
  const rows: GasRow[] = [];
  let hardfork = 'unknown';
  let claimGas = 0;
  try {
    const conn = await connectChain(node.rpcUrl, anvilAccount(0));
    const info = (await conn.publicClient.request({ method: 'anvil_nodeInfo' } as never)) as {
      hardFork?: string;
    };
    hardfork = info.hardFork ?? hardfork;
    for (const payer of payers) {
      for (const votes of voteCounts) {
        for (const workers of workerKinds) {
          let single: number | undefined;
          for (const batch of sizes) {
            const { gasUsed, calldata, fields, profile } = await measure(conn, {
              votes,
              workers,
              payer,
              batch,
              pool,
            });
            if (batch === 1) single = gasUsed;
            const marginal = batch > 1 && single !== undefined ? (gasUsed - single) / (batch - 1) : undefined;
            rows.push({
              votes,
              workers,
              payer,
              batch,
              gasUsed,
              perTask: gasUsed / batch,
              marginal,
              calldataPerTask: calldata / batch,
              fields,
              profile,
            });
            if (!opts.json)
              console.error(
                `measured ${votes} votes, ${workers}, ${payer}'s pool, batch ${batch}: ${gasUsed} gas`,
              );
          }
        }
      }
    }
    claimGas = await measureClaim(conn);
  } finally {
    await node.stop();
  }

  const command = `cambrian bench gas${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const result = {
    command,
    date: new Date().toISOString(),
    chain: `anvil (${hardfork})`,
    pool,
    rows,
    claimGas,
  };
  const outDir = join(ROOT, opts.out);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'gas.json'), `${JSON.stringify(result, null, 2)}\n`);

  const text = `${table(rows)}\n\nclaim(): ${claimGas.toLocaleString('en-US')} gas (one transaction per worker, any amount matured).\n\n${profileTable(rows)}\n\n${fieldTable(rows)}`;
  if (!opts['no-doc']) {
    const doc = [
      '# Settlement gas',
      '',
      `Measured by \`${command}\` on ${result.date.slice(0, 10)}, anvil hardfork \`${hardfork}\`, contract`,
      'ABI 5 (plain Solidity) compiled as in src/chain/build.ts. Each row settles one batch on a fresh contract; gas',
      "is the transaction's gasUsed (21,000 base + calldata + execution). Every task carries its canonical spec",
      "(a realistic search's, in the batch's deflate-raw specs blob). *Returning* workers come from a pool",
      `of ${pool} whose grants are cached (no grant sent) and whose account slots exist; *first-time*`,
      "workers are all new (grant verified and cached, fresh slots). *Paid from*: the operator's pool (`fund`), or",
      "a sponsor's search pool (`openSearch`, `settle(searchId, …)`); the profile and field tables are the first's.",
      'Marginal = (gas(N) − gas(1)) / (N − 1).',
      'See [CONTRACT.md](CONTRACT.md) for where the gas goes.',
      '',
      text,
      '',
    ].join('\n');
    writeFileSync(join(ROOT, 'docs', 'GAS.md'), doc);
  }
  console.log(opts.json ? JSON.stringify(result, null, 2) : text);
  return 0;
}
