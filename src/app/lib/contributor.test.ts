/**
 * The contribute loop against a real coordinator (in process, PGlite in memory, no chain) with the
 * real CPU engine as its trainer: it registers the signed grant, leases, trains, signs and submits;
 * two contributors agree; and a coordinator that goes away and comes back on the same database does
 * not end the session.
 */
import type { Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../coordinator/db.ts';
import { type Coordinator, startCoordinator } from '../../coordinator/service.ts';
import { EVENT_WAIT_MS, freePort, tinySpec } from '../../coordinator/testing.ts';
import { decodeDataset } from '../../data/format.ts';
import { train } from '../../engine/train.ts';
import {
  cambrianDomain,
  createSessionKey,
  resultVoteTypedData,
  signSessionGrant,
} from '../../protocol/eip712.ts';
import { taskIdOf } from '../../protocol/spec.ts';
import { replayAuditJob } from '../../worker/replay-job.ts';
import { keepingStates, StateMemory } from '../../worker/state-memory.ts';
import { CoordinatorApi } from './api.ts';
import {
  Contributor,
  type ContributorSnapshot,
  LEASE_EXPIRED,
  phaseOf,
  type Trainer,
} from './contributor.ts';
import { newSessionGrant, type SessionSigner } from './session.ts';

const domain = cambrianDomain(31337, '0x5fbdb2315678afecb367f032d93f642f64180aa3');
const search = {
  track: 'blobs' as const,
  strategy: { kind: 'random' as const, seed: 7, budget: 6, steps: 4 },
  maxParams: 5_000,
  queueDepth: 2,
};

/** The real engine on the CPU, reading the dataset from the URL the coordinator lists. */
const cpuTrainer: Trainer = {
  async train(spec, dataset, _backend, onProgress) {
    const bytes = new Uint8Array(await (await fetch(dataset.url)).arrayBuffer());
    return train(spec, decodeDataset(dataset.name, bytes, dataset.sha256), {
      backend: 'cpu',
      onProgress: (p) => onProgress({ step: p.step, steps: p.steps, loss: p.loss }),
    });
  },
  async cancel() {},
};

/**
 * The real CPU engine keeping its checkpoint states as the tab's engine Worker does (keepingStates
 * into a StateMemory under the task id, stateUpload from it); only the comlink hop is left out.
 */
function keepingTrainer(): Trainer {
  const memory = new StateMemory(4, 64 * 1024 * 1024);
  return {
    async train(spec, dataset, _backend, onProgress) {
      const bytes = new Uint8Array(await (await fetch(dataset.url)).arrayBuffer());
      return keepingStates(memory, taskIdOf(spec), (onCheckpoint) =>
        train(spec, decodeDataset(dataset.name, bytes, dataset.sha256), {
          backend: 'cpu',
          onProgress: (p) => onProgress({ step: p.step, steps: p.steps, loss: p.loss }),
          onCheckpoint,
        }),
      );
    },
    async cancel() {},
    async stateUpload(taskId, step) {
      return memory.upload(taskId, step);
    },
    // As the engine Worker's replay: the span from the job's start state, on the CPU reference.
    async replay(job, dataset) {
      const bytes = new Uint8Array(await (await fetch(dataset.url)).arrayBuffer());
      const data = decodeDataset(dataset.name, bytes, dataset.sha256);
      return replayAuditJob(job, data);
    },
  };
}

/** What the engine Worker does with the session key, with a local key. */
function localSigner(): SessionSigner {
  let key = createSessionKey();
  return {
    async newSessionKey() {
      key = createSessionKey();
      return key.address;
    },
    async signVote(d, vote, expected) {
      if (key.address !== expected) throw new Error('wrong key');
      return key.signTypedData!(resultVoteTypedData(d, vote));
    },
  };
}

async function contributor(
  api: CoordinatorApi,
  trainer = cpuTrainer,
  backend: 'cpu' | 'webgpu' = 'cpu',
  duty = 1,
): Promise<Contributor> {
  const wallet = privateKeyToAccount(generatePrivateKey());
  const signer = localSigner();
  const grant = await newSessionGrant(signer, wallet.address as Address, 2 * 24 * 3600);
  const grantSig = await signSessionGrant(wallet, domain, grant);
  const info = await api.info();
  return new Contributor({
    api,
    info,
    session: { grant, grantSig, domain },
    signer,
    trainer,
    backend,
    dutyCycle: () => duty,
    timing: { idlePollMs: 100, statusPollMs: 100, maxBackoffMs: 400 },
  });
}

function until(
  c: Contributor,
  test: (s: ContributorSnapshot) => boolean,
  timeoutMs = EVENT_WAIT_MS,
): Promise<ContributorSnapshot> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out; last state ${JSON.stringify(c.state).slice(0, 600)}`)),
      timeoutMs,
    );
    const off = c.subscribe((s) => {
      if (!test(s)) return;
      clearTimeout(timer);
      queueMicrotask(() => off());
      resolve(s);
    });
  });
}

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop();
});

describe('Contributor', () => {
  it('trains leased tasks, signs votes with the session key, and two contributors agree', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({
      db,
      domain,
      search,
      port: 0,
      log: () => {},
      sweepMs: 200,
      settleMs: 200,
      // Two contributors polling 25 times faster than a tab does share one loopback address here.
      rateLimits: false,
    });
    running.push({ stop: () => coordinator.close() });
    const api = new CoordinatorApi(`${coordinator.url}/api/v1`);
    const a = await contributor(api);
    const b = await contributor(api);
    running.push({ stop: () => a.dispose() }, { stop: () => b.dispose() });
    a.start();
    b.start();
    const agreed = await until(a, (s) => s.tasks.some((t) => t.phase === 'agreed'));
    const row = agreed.tasks.find((t) => t.phase === 'agreed');
    expect(row?.accuracy).toBeGreaterThan(0);
    expect(row?.losses.length).toBeGreaterThan(0);
    const task = await api.task(row!.taskId);
    expect(task.state).toBe('agreed');
  });

  it('serves its checkpoint states and answers audit jobs: a third tab verifies, the coordinator replays nothing', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({
      db,
      domain,
      port: 0,
      log: () => {},
      sweepMs: 200,
      settleMs: 200,
      rateLimits: false,
      // Far longer than this test may run: only uploaded states and answered jobs can finish in time.
      queue: { stateWaitMs: 600_000 },
      auditJobs: { answerMs: 600_000 },
    });
    running.push({ stop: () => coordinator.close() });
    const api = new CoordinatorApi(`${coordinator.url}/api/v1`);
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await contributor(api, keepingTrainer()));
    for (const t of tabs) running.push({ stop: () => t.dispose() });
    // Every tab has asked for work (and so is an available auditor) before the task exists.
    for (const t of tabs) t.start();
    await until(
      tabs[2],
      (s) => s.status === 'waiting' && s.message !== undefined && s.message.startsWith('No work'),
    );
    const taskId = (await coordinator.store.addTask(tinySpec(4242, { steps: 8 })))!;
    await until(
      tabs[0],
      (s) => s.tasks.some((t) => t.taskId === taskId && t.phase === 'agreed'),
      EVENT_WAIT_MS,
    );
    const [{ audit }] = await db.query<{
      audit: { passed: boolean; start: string; stepsRecomputed: number; stepsByWorkers: number };
    }>('SELECT audit FROM tasks WHERE task_id = $1', [taskId]);
    expect(audit.passed).toBe(true);
    expect(audit.start).toBe('workers');
    expect(audit.stepsRecomputed).toBe(0);
    expect(tabs.reduce((n, t) => n + t.state.auditsAnswered, 0)).toBeGreaterThan(0);
    expect(tabs.reduce((n, t) => n + t.state.statesServed, 0)).toBeGreaterThan(0);
  });

  it('survives the coordinator going away and coming back on the same database', async () => {
    const db = await openDb({ url: 'memory://' });
    const port = await freePort();
    const start = () =>
      startCoordinator({ db, domain, search, port, log: () => {}, sweepMs: 200, settleMs: 200 });
    let coordinator: Coordinator = await start();
    running.push({ stop: () => coordinator.close() });
    const api = new CoordinatorApi(`${coordinator.url}/api/v1`);
    const c = await contributor(api);
    running.push({ stop: () => c.dispose() });
    c.start();
    await until(c, (s) => s.tasks.some((t) => t.phase === 'submitted'));

    await coordinator.close();
    await until(c, (s) => s.status === 'reconnecting');
    coordinator = await start();
    const before = c.state.tasks.filter((t) => t.phase === 'submitted').length;
    const after = await until(c, (s) => s.tasks.filter((t) => t.phase === 'submitted').length > before);
    expect(after.status).not.toBe('idle');
  });

  it('recovers from a lost GPU device by retrying the task, then falls back to the CPU', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({ db, domain, search, port: 0, log: () => {}, sweepMs: 200 });
    running.push({ stop: () => coordinator.close() });
    const api = new CoordinatorApi(`${coordinator.url}/api/v1`);
    // Fault injection around the real trainer: the first two attempts lose the device mid-task.
    let failures = 2;
    const backends: string[] = [];
    const flaky: Trainer = {
      async train(spec, dataset, backend, onProgress) {
        backends.push(backend);
        if (failures-- > 0) throw new Error('GPU device was lost: the adapter went away');
        return cpuTrainer.train(spec, dataset, backend, onProgress);
      },
      cancel: cpuTrainer.cancel,
    };
    const c = await contributor(api, flaky, 'webgpu');
    running.push({ stop: () => c.dispose() });
    c.start();
    const s = await until(c, (x) => x.tasks.some((t) => t.phase === 'submitted'));
    expect(s.deviceLosses).toBe(2);
    expect(s.backend).toBe('cpu');
    expect(backends.slice(0, 3)).toEqual(['webgpu', 'webgpu', 'cpu']);
  });
});

describe('sleep', () => {
  it('abandons a task whose lease expired while the computer slept, and carries on with new work', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({
      db,
      domain,
      search,
      port: 0,
      log: () => {},
      sweepMs: 100,
      queue: { leaseMs: 3000 },
    });
    running.push({ stop: () => coordinator.close() });
    const api = new CoordinatorApi(`${coordinator.url}/api/v1`);
    // The first task "sleeps" mid-training (no progress, no heartbeat) until the coordinator has
    // expired its lease, then finishes as a laptop would on waking.
    let slept = false;
    const sleepy: Trainer = {
      async train(spec, dataset, backend, onProgress) {
        if (!slept) {
          slept = true;
          await until(c, (s) => s.tasks.length > 0);
          const leaseId = c.state.tasks[0].leaseId;
          while ((await leaseState(leaseId)) !== 'expired') await new Promise((r) => setTimeout(r, 100));
        }
        return cpuTrainer.train(spec, dataset, backend, onProgress);
      },
      cancel: cpuTrainer.cancel,
    };
    const leaseState = async (leaseId: string) =>
      (await db.query<{ state: string }>('SELECT state FROM leases WHERE lease_id = $1', [leaseId]))[0]
        ?.state;
    const c = await contributor(api, sleepy);
    running.push({ stop: () => c.dispose() });
    c.start();
    const s = await until(c, (x) => x.tasks.some((t) => t.phase === 'submitted'));
    const first = s.tasks[s.tasks.length - 1];
    expect(first).toMatchObject({ phase: 'failed', error: LEASE_EXPIRED });
    expect(s.status).not.toBe('idle');
  });
});

describe('duty cycle', () => {
  it('rests between tasks for busy × (1 − d) / d', async () => {
    const db = await openDb({ url: 'memory://' });
    const coordinator = await startCoordinator({ db, domain, search, port: 0, log: () => {} });
    running.push({ stop: () => coordinator.close() });
    const c = await contributor(new CoordinatorApi(`${coordinator.url}/api/v1`), cpuTrainer, 'cpu', 0.25);
    running.push({ stop: () => c.dispose() });
    c.start();
    const resting = await until(c, (s) => s.status === 'resting');
    const busy = resting.tasks[0].finishedAt! - resting.tasks[0].startedAt;
    const rest = Number(/Resting (\d+) ms/.exec(resting.message ?? '')?.[1]);
    expect(resting.message).toContain('duty cycle 25%');
    // busy is measured around the whole lease (fetch, train, sign, submit), so rest ≥ 3 × training time.
    expect(rest).toBeGreaterThanOrEqual(3 * busy * 0.9);
  });
});

describe('phaseOf', () => {
  it('follows the coordinator forward and never moves a task backwards', () => {
    expect(phaseOf('open', 'submitted')).toBe('submitted');
    expect(phaseOf('agreed', 'submitted')).toBe('agreed');
    expect(phaseOf('settling', 'submitted')).toBe('agreed');
    expect(phaseOf('settled', 'agreed')).toBe('settled');
    expect(phaseOf('open', 'settled')).toBe('settled');
    expect(phaseOf('failed', 'submitted')).toBe('failed');
  });
});
