/**
 * `cambrian bench adversary`: a simulated network on loopback attacked by a colluding minority.
 *
 * Each attack runs on a fresh real coordinator (PGlite in memory) and a fresh Settlement contract on
 * a real anvil, deployed as the repo deploys it. Honest workers lease, "train" (the CPU reference's
 * real result, computed once per task and shared, since honest workers are bit-identical; they also
 * wait --think-ms to stand for training time) and submit; the colluders (default a third of the
 * workers, fresh keys, one party) follow the attack's script through the public HTTP API only, as
 * docs/API.md describes it. The line per attack: settled tasks, wrong digests settled on chain
 * (against the CPU reference), honest workers' share of leases and of rewards, strikes on honest and
 * dishonest workers, and compute per accepted result (training plus referee/audit work, in
 * task-equivalents).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Hex, keccak256, type LocalAccount, stringToHex, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { depositBond } from '../chain/bonds.ts';
import { ROOT } from '../chain/build.ts';
import { connectChain, owed, readSettledEvents, revokeSession, strikes } from '../chain/client.ts';
import { intOption, parseOptions } from '../cli/command.ts';
import { auditsByStart } from '../coordinator/audit.ts';
import { DEFAULT_MIN_BOND } from '../coordinator/bonds.ts';
import {
  type AuditJob,
  CoordinatorClient,
  CoordinatorError,
  type Lease,
  type StateRequest,
} from '../coordinator/client.ts';
import { type Db, openDb } from '../coordinator/db.ts';
import { DEFAULT_RATE_LIMITS } from '../coordinator/rate-limits.ts';
import { type Coordinator, startCoordinator } from '../coordinator/service.ts';
import { divergentResult, startTestChain, type TestChain, tinySpec } from '../coordinator/testing.ts';
import { loadDataset } from '../data/node.ts';
import { CpuTrainer, resultOf, runSteps } from '../engine/train-cpu.ts';
import type { TrainState } from '../engine/types.ts';
import {
  type AnyTaskSpec,
  buildTaskResult,
  createSessionKey,
  signSessionGrant,
  type TaskResult,
  taskIdOf,
} from '../protocol/index.ts';
import { replayAuditJob } from '../worker/replay-job.ts';
import { plantedReplay } from './planted.ts';
import { ReferenceRuns } from './reference-runs.ts';

export const ATTACKS = [
  'none',
  'burst-release',
  'grab-after-split',
  'hoard',
  'lazy-replay',
  'fabricate',
  'veto-expiry',
  'veto-revoke',
  'split',
  'lie-last',
  'lie-interval',
  'false-dispute',
  'withhold',
  'garble',
  'steer',
] as const;
export type Attack = (typeof ATTACKS)[number];

export const help = `usage: cambrian bench adversary [--tasks 200] [--workers 12] [--colluders 33] [--steps 8]
                               [--think-ms 100] [--max-seconds 120] [--attacks a,b,…] [--trusted]
                               [--out DIR] [--json]

A simulated network on loopback: a real coordinator (PGlite in memory) and a fresh Settlement
contract on a real anvil per attack, --workers workers of which --colluders percent (rounded up)
are one colluding party with fresh keys. Blobs track, --steps training steps per task. Each attack
runs until --tasks tasks are settled on chain or --max-seconds pass. --trusted: every worker
(colluders too) starts with earned trust (earnAfter audited results), so adaptive replication
runs a trusted worker's fresh task as one replica plus the audit from the first lease.

Attacks (default: all, 'none' first as the baseline):
  none              every worker honest
  burst-release     colluders lease at the same instant, keep a task only when they hold every
                    replica (submitting one fabricated result), release the rest at once
  grab-after-split  colluders lie on every task they get and poll hard for the extra replica a
                    split opens, to win it 2-of-3
  hoard             colluders lease all they can and heartbeat forever, never submit
  lazy-replay       colluders train one task, then pair up as in burst-release and submit that
                    trace relabelled to each task they hold entirely (digest recomputed)
  fabricate         colluders submit made-up results at the honest workers' pace
  veto-expiry       colluders vote the honest digest under grants that expire right after
                    (run with the minimum grant lifetime lowered to 1 s: the default
                    24 h refuses those grants outright)
  veto-revoke       colluders vote the honest digest, then revoke their session key on chain
  split             colluders pair up as in burst-release and split on purpose: one side wrong
                    from the first checkpoint, the other trained honestly and wrong only at the
                    last (so the referee, checking the first divergence, supports it)
  lie-last          colluders pair up as in burst-release and train honestly except the last
                    checkpoint interval, where they substitute other weights; every state they
                    upload and every metric is honestly computed from the substituted weights;
                    as auditors they confirm their own lies and answer others' honestly
  lie-interval      the same lie in one interval drawn at random per task
  false-dispute     colluders train honestly, but drawn as auditors they dispute every result
                    with a lie planted at a random step of the span, consistent in every per-step
                    hash they report, and defend it in the bisection (to frame honest voters or
                    cost the coordinator's CPU)
  withhold          colluders train and vote honestly but never upload a state an audit asks
                    for (each such task is then re-executed whole by a drawn worker)
  garble            the same, uploading random arrays of the right size instead (refused 422)
  steer             as lie-last, but only on architectures at least as accurate as the median
                    seen so far, with the weights zeroed for the last interval (strong ones made
                    to look weak); weaker ones trained honestly

Per line: settled tasks, wrong digests settled on chain (against the CPU reference), honest
workers' share of leases and of rewards, strikes on honest / dishonest workers, failed tasks,
compute per accepted result (training + referee/audit work in task-equivalents on the tasks
settled or failed, ÷ settled), settled/s, disputes bisected to one step, wrong digests among the
leaderboard's first 20. DIR/adversary.json also has the same compute figure
over every task including those still in flight at the end (computeInFlightPerResult) and the
audits by how they started (uploaded states, initial weights, fallback from step 0).
Writes DIR/adversary.json.`;

interface Options {
  tasks: number;
  workers: number;
  colluderPercent: number;
  steps: number;
  thinkMs: number;
  maxSeconds: number;
  attacks: Attack[];
  /** Every worker (colluders too) starts with earned trust, as after a long honest history. */
  trusted: boolean;
}

export interface AttackLine {
  attack: Attack;
  settled: number;
  wrongSettled: number;
  failed: number;
  honestLeaseShare: number;
  honestRewardShare: number;
  strikesHonest: number;
  strikesDishonest: number;
  /**
   * (results trained + referee/audit work, in task-equivalents) on tasks settled or failed, ÷ tasks
   * settled on chain.
   */
  computePerResult: number;
  /** The same over every task, including those still in flight at the end of the run. */
  computeInFlightPerResult: number;
  /** Audits by how they started (uploaded states, initial weights, fallback from step 0). */
  audits: Record<string, number>;
  /** Disputes bisected to one step (the referee recomputed one step or one validation). */
  bisected: number;
  /** Wrong digests among the leaderboard's first 20 (settled results by accuracy, then loss). */
  wrongTop20: number;
  settledPerSecond: number;
  seconds: number;
  /** Requests the coordinator refused, by status (what the defences did). */
  refusals: Record<string, number>;
  /** Bonds slashed on chain (with --trusted every peer bonds BENCH_BOND first): honest and dishonest. */
  slashesHonest: number;
  slashesDishonest: number;
  /** The colluders' rewards (owed on chain) minus what they lost to slashes, in wei: cheating must not pay. */
  cabalNetWei: string;
}

/** What each peer bonds with --trusted: the coordinator's default minimum (./coordinator/bonds.ts). */
const BENCH_BOND = DEFAULT_MIN_BOND;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One worker identity speaking HTTP to the coordinator (the shipped browser-safe client). */
class Peer {
  readonly account: LocalAccount;
  readonly client: CoordinatorClient;
  sessionKey: LocalAccount = createSessionKey();
  sessionExpiresAt = 0;

  constructor(
    url: string,
    readonly honest: boolean,
    private readonly stats: RunStats,
  ) {
    this.account = privateKeyToAccount(generatePrivateKey());
    this.client = new CoordinatorClient(url);
  }

  /** A new session key under a grant of `ttlSeconds`. */
  async openSession(ttlSeconds = 24 * 3600): Promise<boolean> {
    this.sessionKey = createSessionKey();
    try {
      const { expiresAt } = await this.client.openSession({
        worker: this.account.address,
        sessionKey: this.sessionKey,
        signGrant: (typed) => signSessionGrant(this.account, typed.domain, typed.message),
        ttlSeconds,
      });
      this.sessionExpiresAt = expiresAt;
      return true;
    } catch (err) {
      this.stats.refused(err);
      return false;
    }
  }

  /** A lease, a state request, an audit job, or null (no work, or refused: then it waits as told). */
  async lease(states = false): Promise<Lease | StateRequest | AuditJob | null> {
    try {
      return states ? await this.client.work({ states: true, audits: true }) : await this.client.lease();
    } catch (err) {
      this.stats.refused(err);
      if (err instanceof CoordinatorError && err.status === 401) await this.openSession();
      await sleep(retryAfterMs(err) ?? 50);
      return null;
    }
  }

  async submit(leaseId: string, result: TaskResult): Promise<boolean> {
    try {
      await this.client.submit(leaseId, result);
      return true;
    } catch (err) {
      this.stats.refused(err);
      return false;
    }
  }

  async release(leaseId: string): Promise<void> {
    await this.client.release(leaseId).catch((err) => this.stats.refused(err));
  }
}

function retryAfterMs(err: unknown): number | undefined {
  const s = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
  return s === undefined ? undefined : s * 1000;
}

class RunStats {
  /** Results trained (honest or colluding) per task. */
  readonly trainings = new Map<Hex, number>();
  trained(taskId: Hex) {
    this.trainings.set(taskId, (this.trainings.get(taskId) ?? 0) + 1);
  }
  readonly refusals: Record<string, number> = {};
  refused(err: unknown) {
    const key = err instanceof CoordinatorError ? String(err.status) : 'network';
    this.refusals[key] = (this.refusals[key] ?? 0) + 1;
  }
}

/** A made-up result for a task: plausible fields, a perfect score, a consistent digest. */
function fabricated(taskId: Hex, spec: AnyTaskSpec): TaskResult {
  const every = spec.checkpointEvery;
  const steps: number[] = [];
  for (let s = every; s < spec.training.steps; s += every) steps.push(s);
  steps.push(spec.training.steps);
  const fake = (label: string) => keccak256(stringToHex(`${label}:${taskId}`));
  return buildTaskResult({
    taskId,
    valCorrect: spec.split.validation,
    valCount: spec.split.validation,
    valLoss: 0n,
    weightsHash: fake('weights'),
    checkpoints: steps.map((step) => ({ step, stateHash: fake(`state${step}`) })),
  });
}

/** Another task's result relabelled to `taskId` (the digest recomputed): a lazy replay. */
function relabelled(base: TaskResult, taskId: Hex): TaskResult {
  return buildTaskResult({
    taskId,
    valCorrect: base.valCorrect,
    valCount: base.valCount,
    valLoss: BigInt(base.valLoss),
    weightsHash: base.weightsHash as Hex,
    checkpoints: base.checkpoints,
  });
}

interface Network {
  coordinator: Coordinator;
  chain: TestChain;
  db: Db;
  reference: ReferenceRuns;
  specs: Map<Hex, AnyTaskSpec>;
  stats: RunStats;
  opts: Options;
  stop: AbortSignal;
  quorum: number;
}

async function honestLoop(net: Network, peer: Peer) {
  while (!net.stop.aborted) {
    const got = await peer.lease(true);
    if (!got) {
      await sleep(25);
      continue;
    }
    if ('kind' in got) {
      await serve(net, peer, got, net.reference);
      continue;
    }
    await trainHonestly(net, peer, got);
  }
}

/** Trains a lease honestly (the shared reference result, after --think-ms) and submits it. */
async function trainHonestly(net: Network, peer: Peer, lease: Lease) {
  const { result } = await net.reference.compute(lease.spec);
  await sleep(net.opts.thinkMs * (0.5 + Math.random()));
  if (net.stop.aborted) return; // work cut short by the end of the run is not counted
  net.stats.trained(lease.taskId);
  await peer.submit(lease.leaseId, result);
}

/** What a peer keeps of a run: the result it voted and the states it can upload. */
interface Kept {
  result(taskId: Hex): Promise<TaskResult | undefined>;
  state(taskId: Hex, step: number): Promise<TrainState | undefined>;
}

/**
 * Answers a state request (from `kept`) or an audit job. An honest auditor's answer is the true
 * trace's (what replaying gives: the simulated workers read it instead of replaying, and the
 * replay is counted as audit work); a colluder confirms its cabal's own lies (`kept` has them).
 */
async function serve(
  net: Network,
  peer: Peer,
  got: StateRequest | AuditJob,
  kept: Kept,
  honest = peer.honest,
) {
  if (got.kind === 'state') {
    const state = await kept.state(got.taskId, got.step);
    if (state) await peer.client.uploadState(got.taskId, state).catch((err) => net.stats.refused(err));
    return;
  }
  if (got.report === 'steps' || got.report === 'state') {
    // A dispute's side: honest peers replay for real; the cabal, which cannot win a bisection of its
    // own lie, goes silent (the costliest answer for the coordinator: it then replays the span).
    if (!honest) return;
    const work = await replayAuditJob(got, await loadDataset(got.spec.dataset.name, got.spec.dataset.sha256));
    if (work.upload) await peer.client.sendState(work.upload).catch((err) => net.stats.refused(err));
    await peer.client.answerAudit(got.jobId, work.answer).catch((err) => net.stats.refused(err));
    return;
  }
  const own = honest ? undefined : await kept.result(got.taskId);
  const answer = await net.reference.auditAnswer(got, own);
  if (answer) await peer.client.answerAudit(got.jobId, answer).catch((err) => net.stats.refused(err));
}

/**
 * A colluder that trains and votes honestly but will not help verify its votes: asked for a state it
 * sends nothing ('withhold') or random arrays of the right length ('garble', which the coordinator
 * refuses since they do not hash to the trace). Audit jobs of others it answers honestly.
 */
async function unhelpfulLoop(net: Network, peer: Peer, how: 'withhold' | 'garble') {
  while (!net.stop.aborted) {
    const got = await peer.lease(true);
    if (!got) {
      await sleep(25);
      continue;
    }
    if ('kind' in got && got.kind === 'state') {
      if (how === 'withhold') continue;
      const honest = await net.reference.state(got.taskId, got.step);
      const length = honest?.params.length ?? 1;
      const noise = () => Int32Array.from({ length }, () => (Math.random() * 2 ** 31) | 0);
      const garbled = { step: got.step, params: noise(), momentum: noise() };
      await peer.client.uploadState(got.taskId, garbled).catch((err) => net.stats.refused(err));
      continue;
    }
    if ('kind' in got) {
      await serve(net, peer, got, net.reference, true); // others' audits: answered honestly
      continue;
    }
    await trainHonestly(net, peer, got);
  }
}

/**
 * A colluder that trains and votes honestly (so it earns its draws as an auditor) and, drawn for an
 * audit, answers a lie planted at a random step of the span (src/bench/planted.ts); in the dispute
 * that follows it reports per-step hashes and states consistent with that lie. `plants` is the
 * cabal's shared choice per span, so every answer it gives about one span tells the same story.
 */
async function falseDisputeLoop(net: Network, peer: Peer, plants: Map<string, number>) {
  while (!net.stop.aborted) {
    const got = await peer.lease(true);
    if (!got) {
      await sleep(25);
      continue;
    }
    if ('kind' in got && got.kind === 'audit') {
      const key = `${got.taskId}:${got.fromStep}`;
      if (!plants.has(key))
        plants.set(key, got.fromStep + 1 + Math.floor(Math.random() * (got.toStep - got.fromStep)));
      const data = await loadDataset(got.spec.dataset.name, got.spec.dataset.sha256);
      const work = plantedReplay(got, data, plants.get(key)!);
      if (work.upload) await peer.client.sendState(work.upload).catch((err) => net.stats.refused(err));
      await peer.client.answerAudit(got.jobId, work.answer).catch((err) => net.stats.refused(err));
      continue;
    }
    if ('kind' in got) {
      await serve(net, peer, got, net.reference);
      continue;
    }
    await trainHonestly(net, peer, got);
  }
}

/**
 * A run that is honest except in checkpoint interval `interval`, where other weights are put in
 * (one parameter nudged at the interval's first step) and training goes on from them: every state
 * and metric is what those weights really give, so only a replay of that interval exposes it.
 */
async function lyingRun(
  spec: AnyTaskSpec,
  interval: number,
  substitute: (params: Int32Array) => void = (params) => {
    params[0] += 1;
  },
): Promise<{ result: TaskResult; states: TrainState[] }> {
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  const trainer = new CpuTrainer(spec, dataset);
  const every = spec.checkpointEvery;
  const lieAt = Math.min(spec.training.steps - 1, interval * every);
  const states: TrainState[] = [];
  const onCheckpoint = (state: TrainState) => states.push(state);
  const before = await runSteps(trainer, lieAt, { onCheckpoint });
  substitute(trainer.params);
  const after = await runSteps(trainer, spec.training.steps, { onCheckpoint });
  return { result: resultOf(trainer, [...before.checkpoints, ...after.checkpoints]), states };
}

/**
 * The one-interval liars: pair up as in burst-release on tasks the cabal holds entirely and vote a
 * lying run (`pick` chooses the interval); upload its states when asked, confirm its lies as
 * auditors, and audit other tasks honestly.
 */
async function intervalLieLoop(
  net: Network,
  cabal: Peer[],
  pick: (intervals: number) => number,
  steer = false,
) {
  const runs = new Map<Hex, Promise<{ result: TaskResult; states: TrainState[] }>>();
  const accuracies: number[] = [];
  // Steering: lie only on architectures at least as good as the median seen so far, zeroing the
  // weights for the last interval so the search sees them weak; train the others honestly.
  const steered = async (spec: AnyTaskSpec, interval: number) => {
    const honest = await net.reference.compute(spec);
    const accuracy = honest.result.valCorrect / honest.result.valCount;
    accuracies.push(accuracy);
    const median = [...accuracies].sort((a, b) => a - b)[Math.floor(accuracies.length / 2)];
    if (accuracy < median) return honest;
    return lyingRun(spec, interval, (params) => params.fill(0));
  };
  const kept: Kept = {
    result: async (taskId) => (await runs.get(taskId))?.result,
    state: async (taskId, step) => (await runs.get(taskId))?.states.find((s) => s.step === step),
  };
  while (!net.stop.aborted) {
    const got = await Promise.all(cabal.map((p) => p.lease(true)));
    const byTask = new Map<Hex, { peer: Peer; lease: Lease }[]>();
    await Promise.all(
      got.map(async (l, i) => {
        if (l && 'kind' in l) await serve(net, cabal[i], l, kept);
        else if (l) byTask.set(l.taskId, [...(byTask.get(l.taskId) ?? []), { peer: cabal[i], lease: l }]);
      }),
    );
    await Promise.all(
      [...byTask.values()].map(async (held) => {
        // Trusted (single replicas): lie on whatever the cabal holds; else only on tasks it holds entirely.
        if (held.length < (net.opts.trusted ? 1 : net.quorum)) {
          await Promise.all(held.map(({ peer, lease }) => peer.release(lease.leaseId)));
          return;
        }
        const { spec, taskId } = held[0].lease;
        const intervals = Math.ceil(spec.training.steps / spec.checkpointEvery);
        if (!runs.has(taskId))
          runs.set(taskId, steer ? steered(spec, pick(intervals)) : lyingRun(spec, pick(intervals)));
        net.stats.trained(taskId);
        const { result } = await runs.get(taskId)!;
        await sleep(net.opts.thinkMs * (0.5 + Math.random()));
        await Promise.all(held.map(({ peer, lease }) => peer.submit(lease.leaseId, result)));
      }),
    );
    if (byTask.size === 0) await sleep(25);
  }
}

/**
 * Colluders lease together at one instant, keep the tasks whose every wanted replica they hold
 * (`answer` gives their common result) and release the rest at once.
 */
async function burstLoop(
  net: Network,
  cabal: Peer[],
  answer: (lease: Lease) => Promise<TaskResult>,
  firstAnswer?: (lease: Lease) => TaskResult,
) {
  while (!net.stop.aborted) {
    const got = await Promise.all(cabal.map((p) => p.lease()));
    const byTask = new Map<Hex, { peer: Peer; lease: Lease }[]>();
    got.forEach((l, i) => {
      if (l && !('kind' in l))
        byTask.set(l.taskId, [...(byTask.get(l.taskId) ?? []), { peer: cabal[i], lease: l }]);
    });
    await Promise.all(
      [...byTask.values()].map(async (held) => {
        if (held.length >= net.quorum) {
          const result = await answer(held[0].lease);
          const first = firstAnswer?.(held[0].lease) ?? result;
          await Promise.all(
            held.map(({ peer, lease }, i) => peer.submit(lease.leaseId, i === 0 ? first : result)),
          );
        } else {
          await Promise.all(held.map(({ peer, lease }) => peer.release(lease.leaseId)));
        }
      }),
    );
    if (byTask.size === 0) await sleep(25);
  }
}

/**
 * A deliberate split on the tasks the cabal holds entirely: the first holder submits a result wrong
 * from the first checkpoint, the others one trained honestly and wrong only at the last, which the
 * referee (checking the first divergence) supports unless its winner is audited.
 */
async function splitLoop(net: Network, cabal: Peer[]) {
  await burstLoop(
    net,
    cabal,
    async (l) => {
      net.stats.trained(l.taskId);
      const honest = (await net.reference.compute(l.spec)).result;
      return divergentResult(honest, honest.checkpoints.length - 1); // wrong only at the last checkpoint
    },
    (l) => fabricated(l.taskId, l.spec),
  );
}

/** Colluders lie on every task they get and poll hard, to take the extra replica a split opens. */
async function grabLoop(net: Network, peer: Peer) {
  while (!net.stop.aborted) {
    const got = await peer.lease();
    if (!got || 'kind' in got) {
      await sleep(5);
      continue;
    }
    await peer.submit(got.leaseId, fabricated(got.taskId, got.spec));
  }
}

async function hoardLoop(net: Network, peer: Peer) {
  const held = new Set<string>();
  const beat = setInterval(() => {
    for (const id of held)
      peer.client.heartbeat(id).catch((err) => {
        net.stats.refused(err);
        held.delete(id);
      });
  }, 500);
  try {
    while (!net.stop.aborted) {
      const got = await peer.lease();
      if (got && !('kind' in got)) held.add(got.leaseId);
      else await sleep(50);
    }
  } finally {
    clearInterval(beat);
  }
}

async function fabricateLoop(net: Network, peer: Peer) {
  while (!net.stop.aborted) {
    const got = await peer.lease();
    if (!got || 'kind' in got) {
      await sleep(25);
      continue;
    }
    await sleep(net.opts.thinkMs * (0.5 + Math.random()));
    await peer.submit(got.leaseId, fabricated(got.taskId, got.spec));
  }
}

/**
 * Veto: vote the honest digest, then make the vote invalid on chain before settlement, by a grant
 * that expires just after the vote (`expire`) or by revoking the session key (`revoke`).
 */
async function vetoLoop(net: Network, peer: Peer, how: 'expire' | 'revoke') {
  const ttl = 3;
  const wallet = how === 'revoke' ? await connectChain(net.chain.settings.rpcUrl, peer.account) : undefined;
  if (wallet) await fundAccount(net.chain.anvil.rpcUrl, peer.account.address);
  while (!net.stop.aborted) {
    if (!(await peer.openSession(how === 'expire' ? ttl : 24 * 3600))) {
      await sleep(500);
      continue;
    }
    const got = await peer.lease();
    if (!got || 'kind' in got) {
      await sleep(25);
      continue;
    }
    const { result } = await net.reference.compute(got.spec);
    net.stats.trained(got.taskId);
    if (how === 'expire') {
      // Vote as late as the grant allows, so it lapses before the batch is simulated.
      await sleep(Math.max(0, peer.sessionExpiresAt * 1000 - Date.now() - 700));
      await peer.submit(got.leaseId, result);
    } else if (await peer.submit(got.leaseId, result)) {
      await revokeSession(wallet!, net.chain.settings.settlement, peer.sessionKey.address).catch((err) =>
        net.stats.refused(err),
      );
    }
  }
}

async function fundAccount(rpcUrl: string, address: Hex) {
  await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'anvil_setBalance',
      params: [address, '0x56bc75e2d63100000'],
    }),
  });
}

function colluderLoops(net: Network, attack: Attack, cabal: Peer[]): Promise<unknown>[] {
  switch (attack) {
    case 'none':
      return [];
    case 'burst-release':
      return [burstLoop(net, cabal, async (l) => fabricated(l.taskId, l.spec))];
    case 'lazy-replay': {
      let base: Promise<TaskResult> | undefined;
      return [
        burstLoop(net, cabal, async (l) => {
          // The one task the cabal trains; every later one gets its trace relabelled.
          if (!base) {
            net.stats.trained(l.taskId);
            base = net.reference.compute(l.spec).then((r) => r.result);
            return base;
          }
          return relabelled(await base, l.taskId);
        }),
      ];
    }
    case 'grab-after-split':
      return cabal.map((p) => grabLoop(net, p));
    case 'hoard':
      return cabal.map((p) => hoardLoop(net, p));
    case 'fabricate':
      return cabal.map((p) => fabricateLoop(net, p));
    case 'veto-expiry':
      return cabal.map((p) => vetoLoop(net, p, 'expire'));
    case 'veto-revoke':
      return cabal.map((p) => vetoLoop(net, p, 'revoke'));
    case 'split':
      return [splitLoop(net, cabal)];
    case 'lie-last':
      return [intervalLieLoop(net, cabal, (n) => n - 1)];
    case 'lie-interval':
      return [intervalLieLoop(net, cabal, (n) => Math.floor(Math.random() * n))];
    case 'steer':
      return [intervalLieLoop(net, cabal, (n) => n - 1, true)];
    case 'withhold':
    case 'garble':
      return cabal.map((p) => unhelpfulLoop(net, p, attack));
    case 'false-dispute': {
      const plants = new Map<string, number>();
      return cabal.map((p) => falseDisputeLoop(net, p, plants));
    }
  }
}

/** Keeps the queue stocked with fresh tasks (the sponsor's role), a few per worker. */
async function feed(net: Network, seedBase: number) {
  let seed = seedBase;
  while (!net.stop.aborted) {
    const open = await net.coordinator.store.openTaskCount();
    for (let i = open; i < net.opts.workers * 2; i++) {
      const spec = tinySpec(seed++, { steps: net.opts.steps });
      net.specs.set(taskIdOf(spec), spec);
      await net.coordinator.store.addTask(spec);
    }
    await sleep(100);
  }
}

async function settledCount(db: Db): Promise<number> {
  const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE state = 'settled'`);
  return row.n;
}

/**
 * Referee and audit recomputation per task in task-equivalents: training steps ÷ the task's steps,
 * plus validation examples at a third of a training example's cost (a forward pass against forward,
 * backward and update); and whether the task is final (settled or failed).
 */
async function auditWork(db: Db): Promise<{ taskId: Hex; work: number; final: boolean }[]> {
  const rows = await db.query<{ task_id: Hex; w: number; final: boolean }>(
    `SELECT task_id, state IN ('settled', 'failed') AS final,
       (coalesce((referee->>'stepsRecomputed')::float8, 0) + coalesce((audit->>'stepsRecomputed')::float8, 0)
        + coalesce((audit->>'stepsByWorkers')::float8, 0))
         / (spec->'training'->>'steps')::float8
       + coalesce((audit->>'validated')::float8, 0)
         / (3 * (spec->'training'->>'steps')::float8 * (spec->'training'->>'batch')::float8) AS w
     FROM tasks`,
  );
  return rows.map((r) => ({ taskId: r.task_id, work: r.w, final: r.final }));
}

/**
 * Training and audit work per accepted result: on the tasks that reached a final state (settled or
 * failed, so work wasted on failures counts) and, beside it, on every task, including those still in
 * flight when the run stopped (work a longer run would have turned into results).
 */
async function computePerResult(net: Network, settled: number): Promise<{ final: number; all: number }> {
  let final = 0;
  let all = 0;
  for (const t of await auditWork(net.db)) {
    const work = t.work + (net.stats.trainings.get(t.taskId) ?? 0);
    all += work;
    if (t.final) final += work;
  }
  return settled === 0
    ? { final: Number.NaN, all: Number.NaN }
    : { final: final / settled, all: all / settled };
}

/** Waits (at most 20 s) until every agreed task is settled, so the chain holds what was decided. */
async function drain(db: Db) {
  for (let i = 0; i < 100; i++) {
    const [row] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE state IN ('agreed', 'settling')`,
    );
    if (row.n === 0) return;
    await sleep(200);
  }
}

async function runAttack(attack: Attack, opts: Options, index: number): Promise<AttackLine> {
  const chain = await startTestChain();
  const db = await openDb({ url: 'memory://' });
  const logs: string[] = [];
  const born = Date.now();
  const coordinator = await startCoordinator({
    db,
    chain: chain.settings,
    queue: { leaseMs: 3000, maxLeaseMs: 10_000, stateWaitMs: 10_000 },
    // Every simulated worker shares loopback: the per-address limit would throttle the whole network.
    rateLimits: { ...DEFAULT_RATE_LIMITS, perAddress: null, sessionsPerAddress: null },
    // With the minimum grant lifetime (24 h) the coordinator refuses the 3 s grants of veto-expiry; lowered
    // to 1 s for that attack only, so that what the settler does with expired votes is what is measured.
    minGrantSeconds: attack === 'veto-expiry' ? 1 : undefined,
    sweepMs: 250,
    settleMs: 500,
    settleBatchSize: 32,
    log: (m) =>
      process.env.CAMBRIAN_BENCH_LOG
        ? console.error(`[coordinator ${((Date.now() - born) / 1000).toFixed(3)}] ${m}`)
        : logs.push(m),
  });
  const abort = new AbortController();
  const stats = new RunStats();
  const net: Network = {
    coordinator,
    chain,
    db,
    reference: new ReferenceRuns(),
    specs: new Map(),
    stats,
    opts,
    stop: abort.signal,
    quorum: coordinator.store.opts.quorum,
  };
  const colluders = attack === 'none' ? 0 : Math.ceil((opts.workers * opts.colluderPercent) / 100);
  const peers = Array.from(
    { length: opts.workers },
    (_, i) => new Peer(coordinator.url, i >= colluders, stats),
  );
  await Promise.all(peers.map((p) => p.openSession()));
  if (opts.trusted) {
    await bondAll(net, peers);
    await grantTrust(net, peers, coordinator.store.trustParams.earnAfter);
  }
  const cabal = peers.filter((p) => !p.honest);
  const started = Date.now();
  const loops = [
    feed(net, 1 + index * 1_000_000),
    ...peers.filter((p) => p.honest).map((p) => honestLoop(net, p)),
    ...colluderLoops(net, attack, cabal),
  ].map((p) => p.catch((err) => logs.push(`loop: ${String(err)}`)));
  while ((await settledCount(db)) < opts.tasks && Date.now() - started < opts.maxSeconds * 1000)
    await sleep(200);
  const seconds = (Date.now() - started) / 1000;
  abort.abort();
  await Promise.all(loops);
  await drain(db);
  const line = await measure(net, attack, peers, seconds);
  await coordinator.close();
  await db.close();
  await chain.stop();
  return line;
}

/**
 * Every peer (colluders too: bonding is what single replicas cost) gets ETH from anvil and bonds
 * BENCH_BOND, then waits until the coordinator has read the bond.
 */
async function bondAll(net: Network, peers: Peer[]) {
  const { rpcUrl, settlement } = net.chain.settings;
  const reader = await connectChain(rpcUrl);
  for (const p of peers) {
    await reader.publicClient.request({
      method: 'anvil_setBalance' as never,
      params: [p.account.address, toHex(10n ** 18n)] as never,
    });
    await depositBond(await connectChain(rpcUrl, p.account), settlement, BENCH_BOND);
  }
  const workers = peers.map((p) => p.account.address);
  const book = net.coordinator.store.bondCheck;
  while (book && (await book(workers)).size < workers.length) await sleep(100);
}

/** Records `audited` passed audits for every peer: they start trusted (verification.ts). */
async function grantTrust(net: Network, peers: Peer[], audited: number) {
  const records = peers.map((p) => ({ worker: p.account.address, audited, failures: 0 }));
  await net.coordinator.store.writeTrust(net.db, records);
}

async function measure(net: Network, attack: Attack, peers: Peer[], seconds: number): Promise<AttackLine> {
  const { publicClient } = await connectChain(net.chain.settings.rpcUrl);
  const settlement = net.chain.settings.settlement;
  const events = await readSettledEvents(publicClient, settlement);
  let wrong = 0;
  for (const e of events) {
    const spec = net.specs.get(e.taskId);
    if (!spec || (await net.reference.compute(spec)).result.digest !== e.digest) wrong++;
  }
  const honestSet = new Set(peers.filter((p) => p.honest).map((p) => p.account.address.toLowerCase()));
  const leases = await net.db.query<{ worker: string; n: number }>(
    'SELECT worker, count(*)::int AS n FROM leases GROUP BY worker',
  );
  const share = (rows: { worker: string; n: number }[]) => {
    const total = rows.reduce((s, r) => s + r.n, 0);
    const honest = rows.filter((r) => honestSet.has(r.worker.toLowerCase())).reduce((s, r) => s + r.n, 0);
    return total === 0 ? 1 : honest / total;
  };
  let owedHonest = 0n;
  let owedAll = 0n;
  let strikesHonest = 0;
  let strikesDishonest = 0;
  let owedDishonest = 0n;
  for (const p of peers) {
    const o = await owed(publicClient, settlement, p.account.address);
    const s = Number(await strikes(publicClient, settlement, p.account.address));
    owedAll += o;
    if (p.honest) {
      owedHonest += o;
      strikesHonest += s;
    } else {
      owedDishonest += o;
      strikesDishonest += s;
    }
  }
  const slashes = await net.db.query<{ worker: string; amount: string }>(
    `SELECT worker, amount FROM slashes WHERE state = 'slashed'`,
  );
  const slashedOf = (honest: boolean) =>
    slashes.filter((r) => honestSet.has(r.worker.toLowerCase()) === honest);
  const lost = slashedOf(false).reduce((sum, r) => sum + BigInt(r.amount), 0n);
  const [failed] = await net.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasks WHERE state = 'failed'`,
  );
  const compute = await computePerResult(net, events.length);
  return {
    attack,
    settled: events.length,
    wrongSettled: wrong,
    failed: failed.n,
    honestLeaseShare: share(leases),
    honestRewardShare: owedAll === 0n ? 1 : Number((owedHonest * 10_000n) / owedAll) / 10_000,
    strikesHonest,
    strikesDishonest,
    computePerResult: compute.final,
    computeInFlightPerResult: compute.all,
    audits: await auditsByStart(net.db),
    bisected: await bisectedCount(net.db),
    wrongTop20: await wrongInTop(net, 20),
    settledPerSecond: events.length / seconds,
    seconds,
    refusals: net.stats.refusals,
    slashesHonest: slashedOf(true).length,
    slashesDishonest: slashedOf(false).length,
    cabalNetWei: (owedDishonest - lost).toString(),
  };
}

/** Wrong digests among the first `n` settled results in the leaderboard's order. */
async function wrongInTop(net: Network, n: number): Promise<number> {
  const rows = await net.db.query<{ task_id: Hex; agreed_digest: Hex }>(
    `SELECT task_id, agreed_digest FROM tasks WHERE state = 'settled' AND result IS NOT NULL
     ORDER BY (result->>'valCorrect')::float8 / (result->>'valCount')::float8 DESC,
              (result->>'valLoss')::numeric ASC
     LIMIT $1`,
    [n],
  );
  let wrong = 0;
  for (const r of rows) {
    const spec = net.specs.get(r.task_id);
    if (!spec || (await net.reference.compute(spec)).result.digest !== r.agreed_digest) wrong++;
  }
  return wrong;
}

async function bisectedCount(db: Db): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `SELECT coalesce(sum(jsonb_array_length(audit->'bisections')), 0)::int AS n FROM tasks
     WHERE jsonb_typeof(audit->'bisections') = 'array'`,
  );
  return row.n;
}

function formatLine(l: AttackLine): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const refusals = Object.entries(l.refusals)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
  return (
    `| ${l.attack.padEnd(16)} | ${String(l.settled).padStart(7)} | ${String(l.wrongSettled).padStart(5)} | ` +
    `${String(l.failed).padStart(6)} | ${pct(l.honestLeaseShare).padStart(6)} | ${pct(l.honestRewardShare).padStart(7)} | ` +
    `${`${l.strikesHonest} / ${l.strikesDishonest}`.padStart(9)} | ${l.computePerResult.toFixed(2).padStart(7)} | ` +
    `${l.settledPerSecond.toFixed(1).padStart(9)} | ${`${l.slashesHonest} / ${l.slashesDishonest}`.padStart(7)} | ` +
    `${(Number(BigInt(l.cabalNetWei)) / 1e18).toFixed(4).padStart(8)} | ${String(l.bisected).padStart(8)} | ${String(l.wrongTop20).padStart(9)} | ${refusals} |`
  );
}

const HEADER =
  '| attack           | settled | wrong | failed | honest leases | honest rewards | strikes honest / dishonest | compute per result | settled/s | slashes honest / dishonest | cabal net ETH | bisected | wrong top 20 | refusals |\n' +
  '| ---------------- | ------- | ----- | ------ | ------ | ------- | --------- | ------- | --------- | ------- | -------- | -------- | --------- | -------- |';

export async function run(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    tasks: { type: 'string' },
    workers: { type: 'string' },
    colluders: { type: 'string' },
    steps: { type: 'string' },
    'think-ms': { type: 'string' },
    'max-seconds': { type: 'string' },
    attacks: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    trusted: { type: 'boolean' },
  });
  const attacks = (values.attacks?.split(',') ?? [...ATTACKS]) as Attack[];
  const unknown = attacks.filter((a) => !ATTACKS.includes(a));
  if (unknown.length) {
    console.error(
      `cambrian bench adversary: unknown attack(s) ${unknown.join(', ')}; known: ${ATTACKS.join(', ')}`,
    );
    return 2;
  }
  const opts: Options = {
    tasks: intOption(values.tasks, '--tasks', 200, 1),
    workers: intOption(values.workers, '--workers', 12, 2),
    colluderPercent: intOption(values.colluders, '--colluders', 33, 0),
    steps: intOption(values.steps, '--steps', 8, 2),
    thinkMs: intOption(values['think-ms'], '--think-ms', 100, 0),
    maxSeconds: intOption(values['max-seconds'], '--max-seconds', 120, 1),
    attacks,
    trusted: values.trusted ?? false,
  };
  if (!values.json) console.log(HEADER);
  const lines: AttackLine[] = [];
  for (const [i, attack] of attacks.entries()) {
    const line = await runAttack(attack, opts, i);
    lines.push(line);
    console.log(values.json ? JSON.stringify(line) : formatLine(line));
  }
  const dir = values.out ?? join(ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adversary.json'), `${JSON.stringify({ options: opts, lines }, null, 2)}\n`);
  return 0;
}
