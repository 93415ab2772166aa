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

export const help = `usage: cambrian bench gas [--sizes 1,10,50] [--pool N] [--out DIR] [--no-doc] [--json]

Measures Settlement.settle gas per task on a fresh embedded anvil chain: batches of each size,
2 and 3 agreeing votes, first-time vs returning workers (grant cached, grantSig omitted).
  --sizes LIST   batch sizes (default 1,10,50)
  --pool N       returning workers drawn round-robin from a pool of N (default 16)
  --out DIR      where the JSON goes (default bench-results)
  --no-doc       do not rewrite docs/GAS.md
  --json         print the JSON instead of the table`;

type WorkerKind = 'first-time' | 'returning';

export interface GasRow {
  votes: number;
  workers: WorkerKind;
  batch: number;
  gasUsed: number;
  perTask: number;
  /** (gas(N) − gas(1)) / (N − 1): what one more task in the batch costs. */
  marginal?: number;
  /** Of perTask, what the calldata costs at 4/16 gas per zero/non-zero byte. */
  calldataPerTask: number;
  /** Calldata gas per task, field by field (see `calldataByField`). */
  fields: Record<string, number>;
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

interface Scenario {
  votes: number;
  workers: WorkerKind;
  batch: number;
  pool: number;
}

/** One measurement on a fresh contract, so scenarios do not warm each other's storage. */
async function measure(
  conn: SigningConnection,
  s: Scenario,
): Promise<{ gasUsed: number; calldata: number; fields: Record<string, number> }> {
  const address = await deploy(conn);
  const domain = cambrianDomain(conn.chain.id, address);
  const expiresAt = (await conn.publicClient.getBlock()).timestamp + 86_400n;
  const tag = `${s.workers}/${s.votes}/${s.batch}`;
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
    await settleBatch(conn, address, warmup, { skipRejected: false });
    batch = [];
    for (let t = 0; t < s.batch; t++) {
      const voters = Array.from({ length: s.votes }, (_, v) => pool[(t * s.votes + v) % s.pool]);
      batch.push(await settlementOf(domain, `${tag} ${t}`, voters, true));
    }
  }
  const receipt = await settleBatch(conn, address, batch, { skipRejected: false });
  const tx = await conn.publicClient.getTransaction({ hash: receipt.txHash! });
  const fields = calldataByField(tx.input, batch);
  return { gasUsed: Number(receipt.gasUsed), calldata: calldataGas(tx.input), fields };
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
  const [workers, grants, tasks, specs] = args as unknown as SettleArgs;
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
    field['flags, group and vote counts'] +=
      calldataGas(hex(0, 1)) + calldataGas(hex(1, 1)) + calldataGas(hex(t.votes.length, 1));
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
    '| votes | workers | batch | gas used | gas / task | marginal gas / task | calldata gas / task |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const n = (x: number | undefined) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
  for (const r of rows) {
    lines.push(
      `| ${r.votes} | ${r.workers} | ${r.batch} | ${n(r.gasUsed)} | ${n(r.perTask)} | ${n(r.marginal)} | ${n(r.calldataPerTask)} |`,
    );
  }
  return lines.join('\n');
}

/** Calldata gas per task, field by field, of the largest returning-worker batches. */
function fieldTable(rows: GasRow[]): string {
  const largest = Math.max(...rows.map((r) => r.batch));
  const picked = rows.filter((r) => r.workers === 'returning' && r.batch === largest);
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

function parseSizes(value: string): number[] {
  const sizes = value.split(',').map((x) => Number(x.trim()));
  if (sizes.some((x) => !Number.isInteger(x) || x < 1))
    throw new Error(`--sizes must list positive integers`);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export async function run(argv: string[]): Promise<number> {
  const opts = parseOptions(argv, {
    sizes: { type: 'string', default: '1,10,50' },
    pool: { type: 'string', default: '16' },
    out: { type: 'string', default: 'bench-results' },
    'no-doc': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const sizes = parseSizes(opts.sizes);
  const pool = Number(opts.pool);
  if (!Number.isInteger(pool) || pool < 3) throw new Error('--pool must be an integer ≥ 3');

  const node = await startAnvil();
  const rows: GasRow[] = [];
  let hardfork = 'unknown';
  let claimGas = 0;
  try {
    const conn = await connectChain(node.rpcUrl, anvilAccount(0));
    const info = (await conn.publicClient.request({ method: 'anvil_nodeInfo' } as never)) as {
      hardFork?: string;
    };
    hardfork = info.hardFork ?? hardfork;
    for (const votes of [2, 3]) {
      for (const workers of ['first-time', 'returning'] as const) {
        let single: number | undefined;
        for (const batch of sizes) {
          const { gasUsed, calldata, fields } = await measure(conn, { votes, workers, batch, pool });
          if (batch === 1) single = gasUsed;
          const marginal = batch > 1 && single !== undefined ? (gasUsed - single) / (batch - 1) : undefined;
          rows.push({
            votes,
            workers,
            batch,
            gasUsed,
            perTask: gasUsed / batch,
            marginal,
            calldataPerTask: calldata / batch,
            fields,
          });
          if (!opts.json)
            console.error(`measured ${votes} votes, ${workers}, batch ${batch}: ${gasUsed} gas`);
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

  const text = `${table(rows)}\n\nclaim(): ${claimGas.toLocaleString('en-US')} gas (one transaction per worker, any amount matured).\n\n${fieldTable(rows)}`;
  if (!opts['no-doc']) {
    const doc = [
      '# Settlement gas',
      '',
      `Measured by \`${command}\` on ${result.date.slice(0, 10)}, anvil hardfork \`${hardfork}\`, contract`,
      'v2 (plain Solidity) compiled as in src/chain/build.ts. Each row settles one batch on a fresh contract; gas',
      "is the transaction's gasUsed (21,000 base + calldata + execution). Every task carries its canonical spec",
      "(a realistic search's, in the batch's deflate-raw specs blob). *Returning* workers come from a pool",
      `of ${pool} whose grants are cached (no grant sent) and whose account slots exist; *first-time*`,
      'workers are all new (grant verified and cached, fresh slots). Marginal = (gas(N) − gas(1)) / (N − 1).',
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
