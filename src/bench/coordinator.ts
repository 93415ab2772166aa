/**
 * `cambrian bench coordinator`: accepted results per second (with EIP-712 signature verification)
 * and lease latency with N simulated workers on loopback, at saturation and under load.
 *
 * The coordinator runs in this process (PGlite in memory by default, or --database-url); the
 * simulated workers run in a second process (this benchmark re-invoked with --load-generator) so
 * their signing does not share the coordinator's event loop. Each worker opens a session with a
 * signed grant, then repeats lease → sign vote → submit for --rounds rounds; each task gets two
 * identical votes and is agreed. Bounded: it stops by itself after workers × rounds submissions.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import * as secp from 'tiny-secp256k1';
import { bytesToHex, type Hex, hexToBytes, type LocalAccount, stringToBytes } from 'viem';
import { generatePrivateKey, privateKeyToAccount, toAccount } from 'viem/accounts';
import { ROOT } from '../chain/build.ts';
import { intOption, parseOptions } from '../cli/command.ts';
import { auditsByStart } from '../coordinator/audit.ts';
import { type AuditJob, CoordinatorClient, type Lease, type StateRequest } from '../coordinator/client.ts';
import { type Db, openDb } from '../coordinator/db.ts';
import { startCoordinator } from '../coordinator/service.ts';
import { tinySpec } from '../coordinator/testing.ts';
import { loadDataset } from '../data/node.ts';
import { trainCpuRun } from '../engine/train-cpu.ts';
import {
  type CambrianDomain,
  cambrianDomain,
  hashResultVote,
  type ResultVote,
  signSessionGrant,
} from '../protocol/eip712.ts';
import {
  checkpointSteps,
  enableWasmKeccak,
  keccakBytes,
  resultDigest,
  type TaskResult,
  traceRoot,
} from '../protocol/index.ts';
import { ReferenceRuns } from './reference-runs.ts';

export const help = `usage: cambrian bench coordinator [--workers 1000] [--rounds 4] [--load-think-ms 2000] [--load-rounds 5]
                                 [--think-ms N] [--audits] [--recompute-threads N] [--database-url URL]
                                 [--out DIR] [--json]

Starts a coordinator (PGlite in memory unless --database-url) and a second process simulating
--workers workers that each open a session, then lease, sign and submit results; every vote's
signature is verified and each task gets two agreeing votes. Two phases, each on a fresh coordinator:

  saturation   no think time, --rounds results per worker: the coordinator's capacity in accepted
               results/s (latency here is queueing: 1,000 workers waiting on a saturated server);
  under load   workers "train" --load-think-ms (×0.5–1.5, joining over one think period) between
               lease and submit, --load-rounds results each: lease and submit latency p50/p99 at
               the resulting steady rate.

Results/s counts the steady state (after the last worker joined, before the first finished).
--think-ms N runs one phase with that think time instead. Targets on a 2-core machine: ≥ 1,000
results/s and p99 lease latency < 50 ms at 1,000 workers. Writes DIR/coordinator.json.

--audits: the workers submit the CPU reference's true results (each task trained once by the
load generator, both replicas share it), upload the states an audit asks for and answer the audit
jobs drawn for them (leasing with states=1&audits=1, as the headless worker and the tab do), so
every task is audited as in production: two spans (the last interval with the validation, and one
other) replayed by workers that never held the task, results ranking in the first 20 re-executed
whole. After the rounds the workers keep answering until no task is left auditing; the
coordinator's CPU is counted until then, and reported per accepted result and as a share of one
task's training CPU (the CPU reference training one task of the benchmark's shape).
--recompute-threads N: threads for the audits and the referee (default: cores − 1, at most 2; 0 runs
them on the event loop, as before they had threads: run both to compare).`;

const DOMAIN = cambrianDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

/**
 * A session key that signs votes in libsecp256k1 (WebAssembly) instead of viem's JavaScript signer:
 * the same signatures (RFC 6979, low s), 4× cheaper, so a thousand simulated workers on the
 * coordinator's own machine leave it the CPU it is being measured on.
 */
function fastSessionKey(privateKey: Hex): LocalAccount {
  const account = privateKeyToAccount(privateKey);
  const secret = hexToBytes(privateKey);
  return toAccount({
    address: account.address,
    signMessage: account.signMessage,
    signTransaction: account.signTransaction,
    async signTypedData(typed) {
      if (typed.primaryType !== 'ResultVote') return account.signTypedData(typed);
      const hash = hashResultVote(typed.domain as CambrianDomain, typed.message as unknown as ResultVote);
      const { signature, recoveryId } = secp.signRecoverable(hexToBytes(hash), secret);
      return `${bytesToHex(signature)}${(27 + recoveryId).toString(16)}` as Hex;
    },
  });
}

/** A well-formed result for a lease's spec (the same for every replica, so tasks agree). */
function fakeResult(lease: Lease): TaskResult {
  const checkpoints = checkpointSteps(lease.spec.training.steps, lease.spec.checkpointEvery).map((step) => ({
    step,
    stateHash: bytesToHex(keccakBytes(stringToBytes(`${lease.taskId}:${step}`))),
  }));
  const metrics = {
    taskId: lease.taskId,
    valCorrect: 50,
    valCount: 64,
    valLoss: 123456n,
    weightsHash: bytesToHex(keccakBytes(hexToBytes(lease.taskId))),
    traceRoot: traceRoot(checkpoints),
  };
  return { ...metrics, valLoss: '123456', checkpoints, digest: resultDigest(metrics) };
}

/**
 * Answers what an audit asked of this worker from the true results: the state it voted on, or an
 * audit job's span (an honest auditor's answer is the true trace there; the simulated worker reads
 * it instead of replaying, as it "trains" by reading the true result). False when not held.
 */
async function answer(
  client: CoordinatorClient,
  truth: ReferenceRuns,
  request: StateRequest | AuditJob,
): Promise<boolean> {
  if (request.kind === 'audit') {
    const answer = await truth.auditAnswer(request);
    if (!answer) return false;
    await client.answerAudit(request.jobId, answer).catch(() => {});
    return true;
  }
  const state = await truth.state(request.taskId, request.step);
  if (!state) return false;
  await client.uploadState(request.taskId, state).catch(() => {});
  return true;
}

/** CPU milliseconds the CPU reference takes to train one task of the benchmark's shape (mean of 5). */
async function trainCpuMsPerTask(seedBase: number): Promise<number> {
  const spec = tinySpec(seedBase);
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  await trainCpuRun(spec, dataset); // warm up
  const cpu0 = process.cpuUsage();
  for (let i = 1; i <= 5; i++) await trainCpuRun(tinySpec(seedBase + i), dataset);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000 / 5;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
    : Number.NaN;
}

interface LoadReport {
  workers: number;
  submitted: number;
  accepted: number;
  refused: number;
  noWork: number;
  sessionsMs: number;
  runMs: number;
  /** CPU time of the load generator process during the run (user + system). */
  cpuMs: number;
  leaseMs: number[];
  resultMs: number[];
  /** When each accepted result came back, ms after the run started. */
  acceptedAt: number[];
  /** The last worker's first lease and the first worker's last result (ms after the start). */
  allJoinedMs: number;
  firstDoneMs: number;
  /** With --audits: keeps answering state requests until stdin closes (not serialized). */
  serveStates?: () => Promise<void>;
}

/**
 * A minimal fetch over one keep-alive socket pool: a thousand simulated workers on one machine
 * share connections (as they would share a NAT or proxy) instead of overflowing the listen backlog.
 * It answers with the part of a Response the coordinator client reads (status, ok, text), not a
 * WHATWG Response: building those costs the load generator more CPU than its HTTP requests, and
 * that CPU is taken from the coordinator being measured on the same machine.
 */
function pooledFetch(maxSockets: number): typeof fetch {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const once = (url: string, init: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const req = request(
        url,
        { method: init.method ?? 'GET', headers: init.headers as Record<string, string>, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status,
              ok: status >= 200 && status < 300,
              statusText: res.statusMessage ?? '',
              text: async () => text,
            } as Response);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(init.body as string | undefined);
    });
  // A reused keep-alive socket the server just closed fails before any byte of the request is
  // processed; that one case is retried.
  return (async (url: string, init: RequestInit = {}) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await once(url, init);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' || attempt >= 5) throw err;
      }
    }
  }) as typeof fetch;
}

/** The simulated workers (runs in the child process). */
async function loadGenerator(
  url: string,
  workers: number,
  rounds: number,
  thinkMs: number,
  audits: boolean,
): Promise<LoadReport> {
  await enableWasmKeccak();
  const truth = new ReferenceRuns();
  const fetchImpl = pooledFetch(256);
  const t0 = performance.now();
  const clients = await Promise.all(
    Array.from({ length: workers }, async () => {
      const privateKey = generatePrivateKey();
      const key = privateKeyToAccount(privateKey);
      const client = new CoordinatorClient(url, fetchImpl);
      await client.openSession({
        worker: key.address,
        sessionKey: fastSessionKey(privateKey),
        signGrant: (t) => signSessionGrant(key, t.domain, t.message),
      });
      return client;
    }),
  );
  const sessionsMs = performance.now() - t0;
  const report: LoadReport = {
    workers,
    submitted: 0,
    accepted: 0,
    refused: 0,
    noWork: 0,
    sessionsMs,
    runMs: 0,
    cpuMs: 0,
    leaseMs: [],
    resultMs: [],
    acceptedAt: [],
    allJoinedMs: 0,
    firstDoneMs: Number.POSITIVE_INFINITY,
  };
  process.stdout.write(`${JSON.stringify({ phase: 'run' })}\n`); // the coordinator starts its CPU clock
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    clients.map(async (client) => {
      // With think time, workers join over one think period instead of all in the same instant.
      if (thinkMs > 0) await new Promise((r) => setTimeout(r, thinkMs * Math.random()));
      report.allJoinedMs = Math.max(report.allJoinedMs, performance.now() - start);
      for (let r = 0; r < rounds; r++) {
        const l0 = performance.now();
        const lease = audits ? await client.work({ states: true, audits: true }) : await client.lease();
        report.leaseMs.push(performance.now() - l0);
        if (lease && 'kind' in lease) {
          // An audit wants a state this worker voted on: answer, then lease again (same round).
          await answer(client, truth, lease);
          r--;
          continue;
        }
        if (!lease) {
          report.noWork++;
          continue;
        }
        const result = audits ? (await truth.compute(lease.spec)).result : fakeResult(lease);
        // Simulated training time, jittered so workers do not move in lockstep.
        if (thinkMs > 0) await new Promise((r) => setTimeout(r, thinkMs * (0.5 + Math.random())));
        const s0 = performance.now();
        report.submitted++;
        try {
          await client.submit(lease.leaseId, result);
          report.accepted++;
          report.acceptedAt.push(performance.now() - start);
        } catch {
          report.refused++;
        }
        report.resultMs.push(performance.now() - s0);
      }
      report.firstDoneMs = Math.min(report.firstDoneMs, performance.now() - start);
    }),
  );
  report.runMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  report.cpuMs = (cpu.user + cpu.system) / 1000;
  return { ...report, serveStates: audits ? () => serveStates(clients, truth) : undefined };
}

/**
 * After the rounds: every worker keeps answering state requests (polling every 1–2 s) until stdin
 * closes, so the audits of the last rounds' tasks get their states.
 */
async function serveStates(clients: CoordinatorClient[], truth: ReferenceRuns): Promise<void> {
  let open = true;
  process.stdin.on('close', () => (open = false)).on('end', () => (open = false));
  process.stdin.resume();
  await Promise.all(
    clients.map(async (client) => {
      while (open) {
        const got = await client.work({ states: true, audits: true, leases: false }).catch(() => null);
        if (got && 'kind' in got) await answer(client, truth, got);
        else {
          await new Promise((r) => setTimeout(r, 1000 + 1000 * Math.random()));
        }
      }
    }),
  );
}

interface PhaseSummary {
  database: string;
  workers: number;
  rounds: number;
  thinkMs: number;
  accepted: number;
  refused: number;
  noWork: number;
  tasksAgreed: number;
  /** Accepted results per second while every worker was running (after the last joined, before the first left). */
  resultsPerSecond: number;
  leaseP50Ms: number;
  leaseP99Ms: number;
  submitP50Ms: number;
  submitP99Ms: number;
  sessionsPerSecond: number;
  runSeconds: number;
  coordinatorCpuMsPerResult: number | null;
  loadGeneratorCpuMsPerResult: number;
  /** With --audits: audits by how they started, CPU of training one task, and the coordinator's share. */
  audits?: Record<string, number>;
  trainCpuMsPerTask?: number;
  coordinatorCpuShareOfTraining?: number | null;
}

/** One measurement: a fresh coordinator with enough tasks, a load generator process, a summary. */
async function runPhase(opts: {
  workers: number;
  rounds: number;
  thinkMs: number;
  databaseUrl?: string;
  /** Keeps the phases' tasks apart when they share a PostgreSQL database. */
  seedBase: number;
  audits: boolean;
  recomputeThreads?: number;
}): Promise<PhaseSummary> {
  const { workers, rounds, thinkMs } = opts;
  const trainMs = opts.audits ? await trainCpuMsPerTask(opts.seedBase + 900_000) : undefined;
  const db = await openDb({ url: opts.databaseUrl ?? 'memory://' });
  // Leases outlive the run: this measures throughput, not expiry (the tests cover that).
  const coordinator = await startCoordinator({
    db,
    domain: DOMAIN,
    log: () => {},
    // With audits, a state request waits up to 60 s (the workers poll for it every 1–2 s at the end).
    queue: { leaseMs: 600_000, maxLiveLeases: 1_000_000, stateWaitMs: 60_000 },
    // A thousand simulated workers share one loopback address and open their sessions at once.
    rateLimits: false,
    recomputeThreads: opts.recomputeThreads,
  });
  const tasks = Math.ceil((workers * rounds) / 2);
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < tasks; i++) {
    const id = await coordinator.store.addTask(tinySpec(opts.seedBase + i));
    if (id) ids.push(id);
  }
  const queueMs = performance.now() - t0;
  console.error(
    `queued ${tasks} tasks in ${Math.round(queueMs)} ms; ${workers} simulated workers × ${rounds} rounds, think ${thinkMs} ms…`,
  );

  const child = spawn(
    process.execPath,
    // CAMBRIAN_BENCH_NODE_ARGS=--cpu-prof profiles the simulated workers too.
    [
      ...(process.env.CAMBRIAN_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      join(ROOT, 'bin', 'cambrian.mjs'),
      'bench',
      'coordinator',
      '--load-generator',
      coordinator.url,
      '--workers',
      String(workers),
      '--rounds',
      String(rounds),
      '--think-ms',
      String(thinkMs),
      ...(opts.audits ? ['--audits'] : []),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  let coordinatorCpu0: NodeJS.CpuUsage | undefined;
  let coordinatorCpu: NodeJS.CpuUsage | undefined;
  let reported: () => void = () => {};
  const report = new Promise<void>((resolve) => (reported = resolve));
  child.stdout.on('data', (d) => {
    out += d;
    if (!coordinatorCpu0 && out.includes('"phase":"run"')) coordinatorCpu0 = process.cpuUsage();
    // The report is the last line: stop the clock when it starts arriving (with audits: once none is left).
    if (coordinatorCpu0 && out.includes('"workers"') && out.endsWith('\n')) reported();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await Promise.race([report, exited]);
  if (opts.audits) await auditsDone(db, 120_000);
  if (coordinatorCpu0) coordinatorCpu = process.cpuUsage(coordinatorCpu0);
  child.stdin.end();
  const code = await exited;
  const audits = opts.audits ? await auditsByStart(db) : undefined;
  await coordinator.close();
  const [{ agreed }] = await db.query<{ agreed: number }>(
    `SELECT count(*)::int AS agreed FROM tasks WHERE state = 'agreed' AND task_id = ANY($1::text[])`,
    [ids],
  );
  await db.close();
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  const r = JSON.parse(out.trim().split('\n').pop()!) as LoadReport;
  const lease = [...r.leaseMs].sort((a, b) => a - b);
  const submit = [...r.resultMs].sort((a, b) => a - b);
  const steady = r.acceptedAt.filter((t) => t >= r.allJoinedMs && t <= r.firstDoneMs).length;
  return {
    database: db.kind,
    workers,
    rounds,
    thinkMs,
    accepted: r.accepted,
    refused: r.refused,
    noWork: r.noWork,
    tasksAgreed: agreed,
    resultsPerSecond: Math.round(steady / ((r.firstDoneMs - r.allJoinedMs) / 1000)),
    leaseP50Ms: +percentile(lease, 50).toFixed(2),
    leaseP99Ms: +percentile(lease, 99).toFixed(2),
    submitP50Ms: +percentile(submit, 50).toFixed(2),
    submitP99Ms: +percentile(submit, 99).toFixed(2),
    sessionsPerSecond: Math.round(workers / (r.sessionsMs / 1000)),
    runSeconds: +(r.runMs / 1000).toFixed(2),
    // CPU per accepted result, of the coordinator process (all its threads) and of the simulated
    // workers: on one 2-core machine the two share the cores, so their sum bounds the throughput.
    coordinatorCpuMsPerResult: coordinatorCpu
      ? +((coordinatorCpu.user + coordinatorCpu.system) / 1000 / r.accepted).toFixed(3)
      : null,
    loadGeneratorCpuMsPerResult: +(r.cpuMs / r.accepted).toFixed(3),
    ...(opts.audits && {
      audits,
      trainCpuMsPerTask: trainMs === undefined ? undefined : +trainMs.toFixed(3),
      coordinatorCpuShareOfTraining:
        coordinatorCpu && trainMs
          ? +((coordinatorCpu.user + coordinatorCpu.system) / 1000 / r.accepted / trainMs).toFixed(3)
          : null,
    }),
  };
}

/** Waits (at most `timeoutMs`) until no task is waiting for its audit. */
async function auditsDone(db: Db, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const [{ n }] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE state = 'auditing'`,
    );
    if (n === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function printPhase(p: PhaseSummary): void {
  const what = p.thinkMs === 0 ? 'saturation (no think time)' : `think time ${p.thinkMs} ms ×0.5–1.5`;
  console.log(`coordinator on ${p.database}, ${p.workers} simulated workers × ${p.rounds} rounds, ${what}`);
  console.log(`  accepted results/s (signatures verified)  ${p.resultsPerSecond}  (target ≥ 1000)`);
  console.log(
    `  lease latency p50 / p99                   ${p.leaseP50Ms} / ${p.leaseP99Ms} ms  (target p99 < 50)`,
  );
  console.log(`  submit latency p50 / p99                  ${p.submitP50Ms} / ${p.submitP99Ms} ms`);
  console.log(
    `  CPU per result: coordinator ${p.coordinatorCpuMsPerResult} ms, simulated workers ${p.loadGeneratorCpuMsPerResult} ms`,
  );
  console.log(
    `  accepted ${p.accepted}, refused ${p.refused}, no work ${p.noWork}, tasks agreed ${p.tasksAgreed}`,
  );
  if (p.audits)
    console.log(
      `  audits ${JSON.stringify(p.audits)}; training one task ${p.trainCpuMsPerTask} ms CPU; ` +
        `coordinator CPU per result = ${p.coordinatorCpuShareOfTraining} × one task's training`,
    );
}

export async function run(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    workers: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '4' },
    'think-ms': { type: 'string' },
    'load-think-ms': { type: 'string', default: '2000' },
    'load-rounds': { type: 'string', default: '5' },
    'database-url': { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    json: { type: 'boolean', default: false },
    'load-generator': { type: 'string' },
    audits: { type: 'boolean', default: false },
    'recompute-threads': { type: 'string' },
  });
  const workers = intOption(o.workers, '--workers', 1000, 1);
  const rounds = intOption(o.rounds, '--rounds', 4, 1);
  if (o['load-generator']) {
    const thinkMs = intOption(o['think-ms'], '--think-ms', 0);
    const { serveStates, ...report } = await loadGenerator(
      o['load-generator'],
      workers,
      rounds,
      thinkMs,
      o.audits ?? false,
    );
    process.stdout.write(`${JSON.stringify(report)}\n`);
    await serveStates?.();
    return 0;
  }
  // Two phases unless one think time is asked for: capacity (a closed loop with no think time,
  // where latency is queueing) and latency under load (workers that train between lease and submit).
  const phases =
    o['think-ms'] !== undefined
      ? [{ rounds, thinkMs: intOption(o['think-ms'], '--think-ms', 0) }]
      : [
          { rounds, thinkMs: 0 },
          {
            rounds: intOption(o['load-rounds'], '--load-rounds', 5, 1),
            thinkMs: intOption(o['load-think-ms'], '--load-think-ms', 2000, 1),
          },
        ];
  const summaries: PhaseSummary[] = [];
  for (const [i, phase] of phases.entries()) {
    const summary = await runPhase({
      workers,
      ...phase,
      databaseUrl: o['database-url'],
      seedBase: 10_000 + i * 1_000_000,
      audits: o.audits ?? false,
      recomputeThreads:
        o['recompute-threads'] === undefined
          ? undefined
          : intOption(o['recompute-threads'], '--recompute-threads', 1, 0),
    });
    summaries.push(summary);
    if (!o.json) printPhase(summary);
  }
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'coordinator.json'), `${JSON.stringify(summaries, null, 2)}\n`);
  if (o.json) console.log(JSON.stringify(summaries));
  return 0;
}
