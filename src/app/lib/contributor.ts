/**
 * The contribute loop of one browser session: lease a task, train it in the engine Worker, sign the vote
 * with the session key, submit, and follow the task until it settles on chain.
 *
 * It survives a coordinator that goes away (every call is retried with backoff; a finished result is
 * kept and resubmitted, and a lost session token is re-issued from the same signed grant, so the wallet
 * is never asked again) and a lost GPU device (the task is retried; after repeated losses the CPU path
 * takes over). It holds no React state: the UI subscribes to snapshots.
 */
import type { Hex } from 'viem';
import { isDatasetName } from '../../data/catalog.ts';
import type { AuditJob, AuditWork } from '../../protocol/http.ts';
import type { TaskResult } from '../../protocol/result.ts';
import type { AnyTaskSpec } from '../../protocol/spec.ts';
import {
  ApiError,
  type CoordinatorApi,
  CoordinatorDownError,
  type Info,
  type Lease,
  type StateRequest,
  type StateUpload,
} from './api.ts';
import { type GrantedSession, grantJson, type SessionSigner, signVote } from './session.ts';

export type Backend = 'webgpu' | 'cpu';

/** A dataset by name and content hash, and the URL of its canonical binary. */
export interface DatasetRef {
  name: string;
  sha256: string;
  url: string;
}

export interface StepProgress {
  step: number;
  steps: number;
  loss: number;
}

/** What the loop needs from the engine Worker. */
export interface Trainer {
  train(
    spec: AnyTaskSpec,
    dataset: DatasetRef,
    backend: Backend,
    onProgress: (p: StepProgress) => void,
  ): Promise<TaskResult>;
  cancel(): Promise<void>;
  /**
   * The upload body of a checkpoint state kept from a recent task, for an audit's or the referee's
   * state request. A trainer without it keeps no states (the coordinator then recomputes from step 0).
   */
  stateUpload?(taskId: Hex, step: number): Promise<StateUpload | undefined>;
  /**
   * Replays an audit job's span (src/engine/replay.ts). A trainer with it takes verification work:
   * jobs drawn for this tab come instead of a lease and are answered first.
   */
  replay?(job: AuditJob, dataset: DatasetRef): Promise<AuditWork>;
  /** Device-loss reasons seen since the last call (the WebGPU session re-acquires on its own). */
  takeDeviceLosses?(): Promise<string[]>;
}

export type TaskPhase = 'computing' | 'submitted' | 'agreed' | 'settled' | 'failed';

export interface TaskRow {
  taskId: Hex;
  leaseId: string;
  phase: TaskPhase;
  step: number;
  steps: number;
  losses: number[];
  accuracy?: number;
  txHash?: Hex;
  error?: string;
  startedAt: number;
  finishedAt?: number;
}

export type LoopStatus =
  | 'idle'
  | 'connecting'
  | 'waiting'
  | 'computing'
  | 'verifying'
  | 'resting'
  | 'reconnecting'
  | 'stopping';

export interface ContributorSnapshot {
  status: LoopStatus;
  backend: Backend;
  message?: string;
  tasks: TaskRow[];
  deviceLosses: number;
  /** State requests answered with an upload the coordinator accepted. */
  statesServed: number;
  /** Audit jobs this tab answered (verification work for other volunteers' results). */
  auditsAnswered: number;
}

export interface ContributorOptions {
  api: CoordinatorApi;
  info: Info;
  session: GrantedSession;
  /** Holds the session key and signs votes with it. */
  signer: SessionSigner;
  trainer: Trainer;
  backend: Backend;
  /** Fraction of wall time spent computing, (0, 1]. Read before every rest, so it can change live. */
  dutyCycle: () => number;
  /** Polling and retry timing, shortened by tests. */
  timing?: Partial<typeof DEFAULT_TIMING>;
}

const DEFAULT_TIMING = {
  idlePollMs: 2000,
  statusPollMs: 2500,
  heartbeatMs: 5000,
  maxBackoffMs: 10_000,
  maxDeviceRetries: 2,
};

/** TaskRow.error of a task whose lease expired before its result arrived (e.g. across a sleep). */
export const LEASE_EXPIRED = 'lease expired';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Contributor {
  private snapshot: ContributorSnapshot;
  private listeners = new Set<(s: ContributorSnapshot) => void>();
  private running = false;
  private token?: string;
  private readonly timing: typeof DEFAULT_TIMING;
  private loopDone: Promise<void> = Promise.resolve();
  private pollTimer?: ReturnType<typeof setInterval>;
  /** Leases the coordinator no longer honours (expired, e.g. while the computer slept). */
  private readonly lostLeases = new Set<string>();

  constructor(private readonly options: ContributorOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.snapshot = {
      status: 'idle',
      backend: options.backend,
      tasks: [],
      deviceLosses: 0,
      statesServed: 0,
      auditsAnswered: 0,
    };
  }

  get state(): ContributorSnapshot {
    return this.snapshot;
  }

  subscribe(listener: (s: ContributorSnapshot) => void): () => void {
    this.listeners.add(listener);
    listener(this.snapshot);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
    this.pollTimer = setInterval(() => void this.pollTasks(), this.timing.statusPollMs);
  }

  /** Stops after cancelling the task in flight; submitted tasks keep being followed until settled. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.update({ status: 'stopping' });
    await this.options.trainer.cancel().catch(() => {});
    await this.loopDone;
    this.update({ status: 'idle', message: undefined });
  }

  /** Stops everything, including the settlement poller (page leaving). */
  async dispose(): Promise<void> {
    await this.stop();
    clearInterval(this.pollTimer);
  }

  private update(patch: Partial<ContributorSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of this.listeners) l(this.snapshot);
  }

  private updateTask(taskId: string, leaseId: string, patch: Partial<TaskRow>): void {
    this.update({
      tasks: this.snapshot.tasks.map((t) =>
        t.taskId === taskId && t.leaseId === leaseId ? { ...t, ...patch } : t,
      ),
    });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        await this.ensureSession();
        this.update({ status: 'waiting', message: 'Asking the coordinator for work…' });
        const lease = await this.nextWork();
        if (!this.running) break;
        if (lease && 'kind' in lease && lease.kind === 'audit') {
          await this.answerAudit(lease);
          continue;
        }
        if (lease && 'kind' in lease) {
          await this.serveState(lease);
          continue;
        }
        if (!lease) {
          this.update({ message: 'No work right now; checking again shortly.' });
          await wait(this.timing.idlePollMs);
          continue;
        }
        const started = performance.now();
        await this.runLease(lease);
        await this.rest(performance.now() - started);
      } catch (err) {
        if (!this.running) break;
        this.update({ status: 'reconnecting', message: errorText(err) });
        await wait(this.timing.idlePollMs);
      }
    }
  }

  /**
   * A lease, a state request when the trainer keeps states (`states=1`), or an audit job when it can
   * replay spans (`audits=1`).
   */
  private nextWork(): Promise<Lease | StateRequest | AuditJob | null> {
    const { stateUpload, replay } = this.options.trainer;
    if (!stateUpload && !replay) return this.authed((api) => api.lease());
    return this.authed((api) =>
      api.work({ states: stateUpload !== undefined, audits: replay !== undefined }),
    );
  }

  /** Replays an audit job's span in the engine Worker and answers it; a refused answer is dropped. */
  private async answerAudit(job: AuditJob): Promise<void> {
    this.update({
      status: 'verifying',
      message: `Checking steps ${job.fromStep}–${job.toStep} of another volunteer's task…`,
    });
    const dataset = datasetSource(this.options.info, this.options.api.base, job.spec);
    const { answer, upload } = await this.options.trainer.replay!(job, dataset);
    try {
      // A dispute's referee asked for the state reached: send it first (409: the other side did).
      if (upload)
        await this.authed((api) => api.uploadState(upload)).catch((err) => {
          if (!(err instanceof ApiError && err.status === 409)) throw err;
        });
      await this.authed((api) => api.answerAudit(job.jobId, answer));
      this.update({ auditsAnswered: this.snapshot.auditsAnswered + 1 });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
  }

  /**
   * Answers a state request from the states the trainer kept. A state it no longer holds (evicted, or
   * the page reloaded) or an upload the coordinator refuses is skipped: the audit then recomputes.
   */
  private async serveState(request: StateRequest): Promise<void> {
    const upload = await this.options.trainer.stateUpload?.(request.taskId, request.step);
    if (!upload) return;
    try {
      await this.authed((api) => api.uploadState(upload));
      this.update({ statesServed: this.snapshot.statesServed + 1 });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
  }

  /** Rest so that computing takes `dutyCycle` of wall time. */
  private async rest(busyMs: number): Promise<void> {
    const duty = Math.min(1, Math.max(0.05, this.options.dutyCycle()));
    const restMs = (busyMs * (1 - duty)) / duty;
    if (restMs < 1 || !this.running) return;
    this.update({
      status: 'resting',
      message: `Resting ${Math.round(restMs)} ms (duty cycle ${Math.round(duty * 100)}%).`,
    });
    await wait(restMs);
  }

  private async ensureSession(): Promise<void> {
    if (this.token) return;
    this.update({ status: 'connecting', message: 'Registering the session key with the coordinator…' });
    const { grant, grantSig } = this.options.session;
    const { token } = await this.retrying(() =>
      this.options.api.openSession({ grant: grantJson(grant), grantSig }),
    );
    this.token = token;
  }

  private async authedApi(): Promise<CoordinatorApi> {
    await this.ensureSession();
    if (!this.token) throw new Error('no session token');
    return this.options.api.withToken(this.token);
  }

  /** Calls the API with the session token; a rejected token (coordinator restarted) is re-issued once. */
  private async authed<T>(call: (api: CoordinatorApi) => Promise<T>): Promise<T> {
    return this.retrying(async () => {
      try {
        return await call(await this.authedApi());
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          this.token = undefined;
          return call(await this.authedApi());
        }
        throw err;
      }
    });
  }

  /** Retries while the coordinator is unreachable, with capped exponential backoff. */
  private async retrying<T>(call: () => Promise<T>): Promise<T> {
    let delay = 500;
    for (;;) {
      try {
        const value = await call();
        if (this.snapshot.status === 'reconnecting') this.update({ status: 'waiting', message: undefined });
        return value;
      } catch (err) {
        if (!(err instanceof CoordinatorDownError) || !this.running) throw err;
        this.update({
          status: 'reconnecting',
          message: `Coordinator unreachable, retrying in ${Math.round(delay / 1000)} s…`,
        });
        await wait(delay);
        delay = Math.min(delay * 2, this.timing.maxBackoffMs);
      }
    }
  }

  private async runLease(lease: Lease): Promise<void> {
    const spec = lease.spec;
    const taskId = lease.taskId as Hex;
    const row: TaskRow = {
      taskId,
      leaseId: lease.leaseId,
      phase: 'computing',
      step: 0,
      steps: spec.training.steps,
      losses: [],
      startedAt: Date.now(),
    };
    this.update({
      status: 'computing',
      message: undefined,
      tasks: [row, ...this.snapshot.tasks].slice(0, 50),
    });
    // Marks for DevTools and for the e2e test's long-task window.
    performance.mark('cambrian:task-start', { detail: taskId });

    const result = await this.trainWithRecovery(lease, spec);
    if (!result) return;
    performance.mark('cambrian:task-computed', { detail: taskId });
    const accuracy = result.valCount > 0 ? result.valCorrect / result.valCount : undefined;
    const voteSig = await signVote(
      this.options.signer,
      this.options.session,
      result.taskId as Hex,
      result.digest as Hex,
    );
    try {
      await this.authed((api) => api.submit({ leaseId: lease.leaseId, result, voteSig }));
      this.updateTask(taskId, lease.leaseId, { phase: 'submitted', accuracy, finishedAt: Date.now() });
    } catch (err) {
      const conflict = err instanceof ApiError && err.status === 409 ? err.message : '';
      // A resubmission after a lost response: the coordinator already has this result.
      if (conflict.includes('duplicate submission')) {
        this.updateTask(taskId, lease.leaseId, { phase: 'submitted', accuracy, finishedAt: Date.now() });
        return;
      }
      this.updateTask(taskId, lease.leaseId, {
        phase: 'failed',
        accuracy,
        error: conflict.includes('stale lease') ? LEASE_EXPIRED : errorText(err),
      });
    }
  }

  private async trainWithRecovery(lease: Lease, spec: AnyTaskSpec): Promise<TaskResult | undefined> {
    const dataset = datasetSource(this.options.info, this.options.api.base, spec);
    let lastBeat = 0;
    const onProgress = (p: StepProgress) => {
      const row = this.snapshot.tasks.find((t) => t.leaseId === lease.leaseId);
      const losses = row ? [...row.losses, p.loss] : [p.loss];
      this.updateTask(lease.taskId, lease.leaseId, { step: p.step, steps: p.steps, losses });
      const now = Date.now();
      if (now - lastBeat > this.timing.heartbeatMs) {
        lastBeat = now;
        const api = this.options.api.withToken(this.token ?? '');
        api.heartbeat(lease.leaseId, { step: p.step, steps: p.steps }).catch((err) => {
          // 409: the lease expired (the laptop slept, say) and the task went to someone else; finishing
          // it would be wasted work, so abandon it now and take new work.
          if (err instanceof ApiError && err.status === 409) {
            this.lostLeases.add(lease.leaseId);
            void this.options.trainer.cancel().catch(() => {});
          }
        });
      }
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.options.trainer.train(spec, dataset, this.snapshot.backend, onProgress);
      } catch (err) {
        if (this.lostLeases.delete(lease.leaseId)) {
          this.updateTask(lease.taskId, lease.leaseId, { phase: 'failed', error: LEASE_EXPIRED });
          return undefined;
        }
        if (!this.running) {
          this.updateTask(lease.taskId, lease.leaseId, { phase: 'failed', error: 'stopped' });
          await this.options.api
            .withToken(this.token ?? '')
            .release(lease.leaseId)
            .catch(() => {});
          return undefined;
        }
        const losses = (await this.options.trainer.takeDeviceLosses?.().catch(() => [])) ?? [];
        if (losses.length > 0 || isDeviceLoss(err)) {
          const fallBack = attempt + 1 >= this.timing.maxDeviceRetries;
          this.update({
            deviceLosses: this.snapshot.deviceLosses + 1,
            backend: fallBack ? 'cpu' : this.snapshot.backend,
            message: fallBack
              ? 'The GPU device was lost repeatedly; continuing on the CPU path.'
              : 'The GPU device was lost; re-acquiring it and restarting the task.',
          });
          this.updateTask(lease.taskId, lease.leaseId, { step: 0, losses: [] });
          continue;
        }
        this.updateTask(lease.taskId, lease.leaseId, { phase: 'failed', error: errorText(err) });
        await this.authed((api) => api.release(lease.leaseId)).catch(() => {});
        return undefined;
      }
    }
  }

  /** Follows submitted tasks until they settle (agreement and the settlement transaction). */
  private async pollTasks(): Promise<void> {
    const open = this.snapshot.tasks.filter((t) => t.phase === 'submitted' || t.phase === 'agreed');
    for (const row of open) {
      try {
        const task = await this.options.api.task(row.taskId);
        const phase = phaseOf(task.state, row.phase);
        const txHash = (task.txHash ?? undefined) as Hex | undefined;
        if (phase === 'settled' && row.phase !== 'settled')
          performance.mark('cambrian:task-settled', { detail: row.taskId });
        if (phase !== row.phase || txHash !== row.txHash)
          this.updateTask(row.taskId, row.leaseId, { phase, txHash });
      } catch {
        // The coordinator may be restarting; the next tick asks again.
      }
    }
  }
}

/**
 * Where a spec's dataset is fetched: the URL the coordinator lists in /info (relative to the
 * coordinator), else the copy the web app serves from datasets/<name>.bin for a catalog dataset, else
 * the coordinator's copy by hash (a sponsor's dataset). The Worker checks its sha256.
 */
export function datasetSource(info: Info, apiBase: string, spec: AnyTaskSpec): DatasetRef {
  const known = info.datasets.find((d) => d.sha256.toLowerCase() === spec.dataset.sha256.toLowerCase());
  const page = globalThis.location?.href ?? apiBase;
  const api = new URL(apiBase, page);
  // A sponsor's dataset is not in /info's list: the coordinator serves it by hash.
  const url = known?.url
    ? new URL(known.url, api)
    : isDatasetName(spec.dataset.name)
      ? new URL(`datasets/${spec.dataset.name}.bin`, page)
      : new URL(`${api.pathname.replace(/\/$/, '')}/datasets/${spec.dataset.sha256}`, api);
  return { name: spec.dataset.name, sha256: spec.dataset.sha256, url: url.href };
}

/** Maps the coordinator's task state onto what this tab shows; never moves backwards. */
export function phaseOf(state: string, current: TaskPhase): TaskPhase {
  const order: TaskPhase[] = ['computing', 'submitted', 'agreed', 'settled'];
  const next: TaskPhase =
    state === 'settled'
      ? 'settled'
      : state === 'agreed' || state === 'settling'
        ? 'agreed'
        : state === 'failed'
          ? 'failed'
          : 'submitted';
  if (next === 'failed') return current === 'settled' ? current : next;
  return order.indexOf(next) > order.indexOf(current) ? next : current;
}

export function isDeviceLoss(err: unknown): boolean {
  const text = errorText(err).toLowerCase();
  return (
    text.includes('device lost') ||
    text.includes('device was lost') ||
    text.includes('devicelost') ||
    text.includes('gpudevice')
  );
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
