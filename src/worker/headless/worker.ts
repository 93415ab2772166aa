/**
 * The headless worker (Node): its own key (generated and saved on first use), a session grant signed
 * with it for a fresh session key, the conformance self-test, then the shared lease loop
 * (src/coordinator/client.ts) training each lease with the engine on WebGPU (Dawn) or the CPU.
 * It keeps the checkpoint states of its last few tasks in memory (../state-memory.ts) and uploads the
 * one the referee asks for, so a dispute is recomputed over one checkpoint interval only.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Hex, LocalAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import {
  type AuditAnswer,
  type AuditJob,
  CoordinatorClient,
  type Lease,
  runWorkerLoop,
  type WorkerEvent,
} from '../../coordinator/client.ts';
import { isDatasetName } from '../../data/catalog.ts';
import { sha256Of } from '../../data/format.ts';
import { loadDataset, saveSponsoredDataset, sponsoredDatasetPath } from '../../data/node.ts';
import { train } from '../../engine/train.ts';
import type { Backend, Dataset } from '../../engine/types.ts';
import { createSessionKey, signSessionGrant } from '../../protocol/eip712.ts';
import { resultDigest, type TaskResult } from '../../protocol/index.ts';
import { replayAuditJob } from '../replay-job.ts';
import { keepingStates, StateMemory } from '../state-memory.ts';

/** Reads the worker's private key from `path`, creating it (mode 0600) if the file does not exist. */
export async function loadOrCreateKey(path: string): Promise<{ account: LocalAccount; created: boolean }> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    const key = (
      text.startsWith('{') ? (JSON.parse(text) as { privateKey: string }).privateKey : text
    ) as Hex;
    return { account: privateKeyToAccount(key), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const privateKey = generatePrivateKey();
  const account = privateKeyToAccount(privateKey);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify({ address: account.address, privateKey }, null, 2)}\n`, {
    mode: 0o600,
  });
  await chmod(path, 0o600);
  return { account, created: true };
}

/** A dishonest worker for fault tests and demos: reports one more correct answer than it found. */
export function tamper(result: TaskResult): TaskResult {
  const valCorrect = result.valCorrect < result.valCount ? result.valCorrect + 1 : result.valCorrect - 1;
  const forged = { ...result, valCorrect };
  return {
    ...forged,
    digest: resultDigest({
      ...forged,
      taskId: forged.taskId as Hex,
      valLoss: BigInt(forged.valLoss),
      weightsHash: forged.weightsHash as Hex,
      traceRoot: forged.traceRoot as Hex,
    }),
  };
}

export interface HeadlessWorkerOptions {
  coordinator: string;
  account: LocalAccount;
  backend: Backend;
  stop?: AbortSignal;
  abort?: AbortSignal;
  maxTasks?: number;
  heartbeatMs?: number;
  idleMs?: number;
  dishonest?: boolean;
  /** Where checkpoint states are kept for the referee (default: the last 4 tasks within 256 MiB). */
  states?: StateMemory;
  /** Take verification work (audit jobs) between tasks (default true). */
  audits?: boolean;
  /** False: verify only, take no leases (default true). */
  leases?: boolean;
  /** Attacks, for the tests and the adversary bench: rewrite each result, or each audit answer. */
  forge?: (result: TaskResult) => TaskResult;
  forgeAudit?: (answer: AuditAnswer, job: AuditJob) => AuditAnswer;
  onEvent?: (event: WorkerEvent) => void;
}

/** Opens a session and runs the lease loop until stopped. Returns the number of results accepted. */
export async function runHeadlessWorker(opts: HeadlessWorkerOptions): Promise<number> {
  const client = new CoordinatorClient(opts.coordinator);
  const sessionKey = createSessionKey();
  await client.openSession({
    worker: opts.account.address,
    sessionKey,
    signGrant: (typed) => signSessionGrant(opts.account, typed.domain, typed.message),
  });
  const memory = opts.states ?? new StateMemory();
  const compute = async (
    lease: Lease,
    ctx: { signal: AbortSignal; onProgress: (p: { step: number; steps: number; loss: number }) => void },
  ) => {
    const dataset = await datasetOf(client, lease.spec.dataset);
    const result = await keepingStates(memory, lease.taskId, (onCheckpoint) =>
      train(lease.spec, dataset, {
        backend: opts.backend,
        signal: ctx.signal,
        progressEvery: Math.max(1, Math.floor(lease.spec.training.steps / 20)),
        onProgress: (p) => ctx.onProgress({ step: p.step, steps: p.steps, loss: p.loss }),
        onCheckpoint,
      }),
    );
    const forged = opts.forge ? opts.forge(result) : result;
    return opts.dishonest ? tamper(forged) : forged;
  };
  return runWorkerLoop({
    client,
    compute,
    stop: opts.stop,
    abort: opts.abort,
    maxTasks: opts.maxTasks,
    heartbeatMs: opts.heartbeatMs,
    idleMs: opts.idleMs,
    serveState: (taskId, step) => memory.get(taskId, step),
    leases: opts.leases,
    audit:
      opts.audits === false
        ? undefined
        : async (job, signal) => {
            // Answered on the CPU reference (../replay-job.ts).
            const work = await replayAuditJob(job, await datasetOf(client, job.spec.dataset), { signal });
            return opts.forgeAudit ? { ...work, answer: opts.forgeAudit(work.answer, job) } : work;
          },
    onEvent: opts.onEvent,
  });
}

/**
 * A spec's dataset: a catalog one is built here; a sponsor's is fetched once from the coordinator by
 * its hash, checked against it and kept (docs/SPONSORS.md).
 */
async function datasetOf(client: CoordinatorClient, ref: { name: string; sha256: string }): Promise<Dataset> {
  if (!isDatasetName(ref.name) && !existsSync(sponsoredDatasetPath(ref.sha256))) {
    const bytes = await client.datasetBytes(ref.sha256 as Hex);
    const got = sha256Of(bytes);
    if (got !== ref.sha256)
      throw new Error(`dataset '${ref.name}': the coordinator sent ${got}, not ${ref.sha256}`);
    await saveSponsoredDataset(bytes);
  }
  return loadDataset(ref.name, ref.sha256);
}
