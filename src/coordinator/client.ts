/**
 * The coordinator client and the worker's lease loop, shared by the headless worker (Node) and the
 * web app (browser): fetch only, no node: imports.
 *
 *   const client = new CoordinatorClient(url);
 *   await client.openSession({ worker, signGrant, sessionKey });
 *   await runWorkerLoop({ client, compute, signal });
 */
import type { Hex, LocalAccount } from 'viem';
import type { TrainState } from '../engine/types.ts';
import { type CambrianDomain, SESSION_GRANT_TYPES, signResultVote } from '../protocol/eip712.ts';
import {
  type AuditAnswer,
  type AuditJob,
  type AuditWork,
  type Info as CoordinatorInfo,
  type Lease,
  leasePath,
  type StateRequest,
  type StateUpload,
  type WorkWanted,
} from '../protocol/http.ts';
import type { TaskResult } from '../protocol/index.ts';

/** The messages are defined once, in src/protocol/http.ts. */
export type {
  AuditAnswer,
  AuditJob,
  AuditWork,
  Info as CoordinatorInfo,
  Lease,
  StateRequest,
} from '../protocol/http.ts';

/** Base64 of an i32 array's little-endian bytes, without node: Buffer (the browser shares this file). */
export function i32ToBase64(a: Int32Array): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The `POST /states` body for a state of a task (base64 of its little-endian i32 arrays). */
export function stateUploadOf(taskId: Hex, state: TrainState): StateUpload {
  return {
    taskId,
    step: state.step,
    params: i32ToBase64(state.params),
    momentum: i32ToBase64(state.momentum),
  };
}

/** The inverse of i32ToBase64 (little-endian bytes; the engine refuses big-endian hosts). */
export function base64ToI32(text: string): Int32Array {
  const binary = atob(text);
  if (binary.length % 4 !== 0) throw new Error('base64 of i32s must be a whole number of 4-byte values');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Int32Array(bytes.buffer);
}

/** The start state an audit job carries (undefined: the initial weights). */
export function auditStartState(job: AuditJob): TrainState | undefined {
  if (!job.start) return undefined;
  return {
    step: job.fromStep,
    params: base64ToI32(job.start.params),
    momentum: base64ToI32(job.start.momentum),
  };
}

export interface GrantTypedData {
  domain: CambrianDomain;
  types: typeof SESSION_GRANT_TYPES;
  primaryType: 'SessionGrant';
  message: { worker: Hex; sessionKey: Hex; expiresAt: bigint };
}

export class CoordinatorError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    /** From Retry-After on a 429 (or 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(`coordinator refused (${status}): ${reason}`);
    this.name = 'CoordinatorError';
  }
}

export class CoordinatorClient {
  readonly api: string;
  private token?: string;
  private sessionKey?: LocalAccount;
  private worker?: Hex;
  private infoCache?: CoordinatorInfo;
  private renew?: () => Promise<void>;

  constructor(
    baseUrl: string,
    private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
  ) {
    this.api = `${baseUrl.replace(/\/+$/, '')}/api/v1`;
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; data?: T }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this.fetchImpl(`${this.api}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return { status: 204 };
    const text = await res.text();
    const data = text ? (JSON.parse(text) as T & { error?: string }) : undefined;
    if (!res.ok) {
      const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
      throw new CoordinatorError(
        res.status,
        data?.error ?? res.statusText,
        Number.isFinite(retryAfter) ? retryAfter : undefined,
      );
    }
    return { status: res.status, data };
  }

  async info(): Promise<CoordinatorInfo> {
    this.infoCache ??= (await this.request<CoordinatorInfo>('GET', '/info')).data!;
    return this.infoCache;
  }

  get address(): Hex | undefined {
    return this.worker;
  }

  /**
   * Opens a session: the wallet (`signGrant`) authorises `sessionKey` until now + ttlSeconds, once;
   * the session key then signs every vote. When the session lapses the loop renews it the same way.
   */
  async openSession(opts: {
    worker: Hex;
    sessionKey: LocalAccount;
    signGrant: (typed: GrantTypedData) => Promise<Hex>;
    ttlSeconds?: number;
  }): Promise<{ expiresAt: number }> {
    const { domain } = await this.info();
    const expiresAt = Math.floor(Date.now() / 1000) + (opts.ttlSeconds ?? 7 * 24 * 3600);
    const grant = { worker: opts.worker, sessionKey: opts.sessionKey.address, expiresAt };
    const grantSig = await opts.signGrant({
      domain,
      types: SESSION_GRANT_TYPES,
      primaryType: 'SessionGrant',
      message: { ...grant, expiresAt: BigInt(expiresAt) },
    });
    this.token = undefined;
    const { data } = await this.request<{ token: string; expiresAt: number }>('POST', '/sessions', {
      grant,
      grantSig,
    });
    this.token = data!.token;
    this.sessionKey = opts.sessionKey;
    this.worker = opts.worker;
    this.renew = async () => {
      await this.openSession(opts);
    };
    return { expiresAt };
  }

  /** Renews the session (after a 401); false when there is nothing to renew with. */
  async renewSession(): Promise<boolean> {
    if (!this.renew) return false;
    await this.renew();
    return true;
  }

  async lease(): Promise<Lease | null> {
    const { status, data } = await this.request<Lease>('POST', '/leases');
    return status === 204 ? null : data!;
  }

  /** A lease, or a state request from the referee (for workers that keep their states), or null. */
  async leaseOrStateRequest(): Promise<Lease | StateRequest | null> {
    return (await this.work({ states: true })) as Lease | StateRequest | null;
  }

  /**
   * The next piece of work: a lease, or (with `states`) a state request, or (with `audits`) an
   * audit job drawn for this worker; null when there is none.
   */
  async work(wanted: WorkWanted): Promise<Lease | StateRequest | AuditJob | null> {
    const { status, data } = await this.request<Lease | StateRequest | AuditJob>('POST', leasePath(wanted));
    return status === 204 ? null : data!;
  }

  /** Answers an audit job with what this worker computed (the coordinator compares it). */
  async answerAudit(jobId: string, answer: AuditAnswer): Promise<void> {
    await this.request('POST', `/audits/${jobId}`, answer);
  }

  /** Uploads the state the referee asked for; the coordinator checks it against the agreed stateHash. */
  async uploadState(taskId: Hex, state: TrainState): Promise<void> {
    await this.sendState(stateUploadOf(taskId, state));
  }

  /** Sends a `POST /states` body as it is (already encoded, e.g. by a replayed audit job). */
  async sendState(upload: StateUpload): Promise<void> {
    await this.request('POST', '/states', upload);
  }

  async heartbeat(leaseId: string, progress: { step?: number; loss?: number } = {}): Promise<number> {
    return (await this.request<{ deadline: number }>('POST', `/leases/${leaseId}/heartbeat`, progress)).data!
      .deadline;
  }

  async release(leaseId: string): Promise<void> {
    await this.request('POST', `/leases/${leaseId}/release`);
  }

  /** Signs the vote with the session key and submits it; returns the task's state afterwards. */
  async submit(leaseId: string, result: TaskResult): Promise<string> {
    if (!this.sessionKey || !this.worker) throw new Error('no session: call openSession first');
    const { domain } = await this.info();
    const voteSig = await signResultVote(this.sessionKey, domain, {
      taskId: result.taskId as Hex,
      digest: result.digest as Hex,
      worker: this.worker,
    });
    const { data } = await this.request<{ taskState: string }>('POST', '/results', {
      leaseId,
      result,
      voteSig,
    });
    return data!.taskState;
  }

  async task(taskId: Hex): Promise<Record<string, unknown>> {
    return (await this.request<Record<string, unknown>>('GET', `/tasks/${taskId}`)).data!;
  }
  async leaderboard(limit = 100): Promise<Record<string, unknown>[]> {
    return (await this.request<Record<string, unknown>[]>('GET', `/leaderboard?limit=${limit}`)).data!;
  }
  async search(): Promise<Record<string, unknown>> {
    return (await this.request<Record<string, unknown>>('GET', '/search')).data!;
  }
  async workerStats(address: Hex): Promise<Record<string, unknown>> {
    return (await this.request<Record<string, unknown>>('GET', `/workers/${address}`)).data!;
  }
  async datasetBytes(sha256: Hex): Promise<Uint8Array> {
    const res = await this.fetchImpl(`${this.api}/datasets/${sha256}`);
    if (!res.ok) throw new CoordinatorError(res.status, `dataset ${sha256}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

// ---- the lease loop -----------------------------------------------------------------------------

export interface ComputeProgress {
  step: number;
  steps: number;
  loss?: number;
}

export type WorkerEvent =
  | { type: 'leased'; lease: Lease }
  | { type: 'progress'; taskId: Hex; progress: ComputeProgress }
  | { type: 'submitted'; taskId: Hex; taskState: string; ms: number }
  | { type: 'dropped'; taskId: Hex; reason: string }
  | { type: 'released'; taskId: Hex }
  | { type: 'state'; taskId: Hex; step: number; uploaded: boolean; reason?: string }
  | { type: 'audit'; taskId: Hex; jobId: string; answered: boolean; ms: number; reason?: string }
  | { type: 'idle' }
  | { type: 'error'; error: string };

export interface WorkerLoopOptions {
  client: CoordinatorClient;
  /** Trains the lease's spec; must reject when `signal` aborts. */
  compute: (
    lease: Lease,
    ctx: { signal: AbortSignal; onProgress: (p: ComputeProgress) => void },
  ) => Promise<TaskResult>;
  /** Stop taking new leases; the current task is finished and submitted. */
  stop?: AbortSignal;
  /** Stop now: the current lease is given back unfinished. */
  abort?: AbortSignal;
  heartbeatMs?: number;
  /** Wait between lease attempts when there is no work (doubles up to 8×). */
  idleMs?: number;
  /** Stop after this many submitted results. */
  maxTasks?: number;
  /**
   * The state after `step` of a task this worker submitted, if it still holds it. With it, the loop
   * answers the referee's state requests (which come instead of a lease); without it, none are sent.
   */
  serveState?: (taskId: Hex, step: number) => TrainState | undefined;
  /**
   * Replays an audit job's span (src/engine/replay.ts). With it the loop takes verification work
   * (`?audits=1`): jobs drawn for this worker come instead of a lease and are answered first.
   */
  audit?: (job: AuditJob, signal: AbortSignal) => Promise<AuditWork>;
  /** False: a verifier that takes no leases, only audit jobs and state requests (default true). */
  leases?: boolean;
  onEvent?: (event: WorkerEvent) => void;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return AbortSignal.any(present);
}

/** Leases, computes with heartbeats, submits; until `stop`, `abort` or `maxTasks`. Returns results submitted. */
export async function runWorkerLoop(opts: WorkerLoopOptions): Promise<number> {
  const { client, onEvent = () => {} } = opts;
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const idleMs = opts.idleMs ?? 1_000;
  const halt = anySignal([opts.stop, opts.abort]);
  let submitted = 0;
  let idle = idleMs;
  while (!halt.aborted && submitted < (opts.maxTasks ?? Number.POSITIVE_INFINITY)) {
    let lease: Lease | StateRequest | AuditJob | null;
    try {
      lease = await client.work({
        states: opts.serveState !== undefined,
        audits: opts.audit !== undefined,
        leases: opts.leases,
      });
    } catch (err) {
      if (
        err instanceof CoordinatorError &&
        err.status === 401 &&
        (await client.renewSession().catch(() => false))
      )
        continue;
      onEvent({ type: 'error', error: err instanceof Error ? err.message : String(err) });
      await sleep(idle, halt);
      idle = Math.min(idle * 2, idleMs * 8);
      continue;
    }
    if (!lease) {
      onEvent({ type: 'idle' });
      await sleep(idle, halt);
      idle = Math.min(idle * 2, idleMs * 8);
      continue;
    }
    if ('kind' in lease && lease.kind === 'audit') {
      await answerAuditJob(client, lease, opts.audit!, halt, onEvent);
      continue;
    }
    if ('kind' in lease) {
      await answerStateRequest(client, lease, opts.serveState, onEvent);
      continue;
    }
    idle = idleMs;
    onEvent({ type: 'leased', lease });
    if (await runLease(opts, lease, heartbeatMs, onEvent)) submitted++;
  }
  return submitted;
}

async function answerAuditJob(
  client: CoordinatorClient,
  job: AuditJob,
  audit: NonNullable<WorkerLoopOptions['audit']>,
  signal: AbortSignal,
  onEvent: (event: WorkerEvent) => void,
): Promise<void> {
  const started = Date.now();
  const event = { type: 'audit' as const, taskId: job.taskId, jobId: job.jobId };
  try {
    const { answer, upload } = await audit(job, signal);
    // A dispute's other side may have sent this state first (409): the answer still counts.
    if (upload)
      await client.sendState(upload).catch((err) => {
        if (!(err instanceof CoordinatorError && err.status === 409)) throw err;
      });
    await client.answerAudit(job.jobId, answer);
    onEvent({ ...event, answered: true, ms: Date.now() - started });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    onEvent({ ...event, answered: false, ms: Date.now() - started, reason });
  }
}

async function answerStateRequest(
  client: CoordinatorClient,
  request: StateRequest,
  serveState: WorkerLoopOptions['serveState'],
  onEvent: (event: WorkerEvent) => void,
): Promise<void> {
  const { taskId, step } = request;
  const state = serveState?.(taskId, step);
  if (!state) {
    onEvent({ type: 'state', taskId, step, uploaded: false, reason: 'not held' });
    return;
  }
  try {
    await client.uploadState(taskId, state);
    onEvent({ type: 'state', taskId, step, uploaded: true });
  } catch (err) {
    onEvent({
      type: 'state',
      taskId,
      step,
      uploaded: false,
      reason: err instanceof Error ? err.message : String(err),
    });
  }
}

/** One lease: compute with heartbeats, then submit (or give back on abort). True when accepted. */
async function runLease(
  opts: WorkerLoopOptions,
  lease: Lease,
  heartbeatMs: number,
  onEvent: (event: WorkerEvent) => void,
): Promise<boolean> {
  const { client } = opts;
  const lost = new AbortController();
  const signal = anySignal([opts.abort, lost.signal]);
  let last: ComputeProgress | undefined;
  const beat = setInterval(() => {
    client.heartbeat(lease.leaseId, last ? { step: last.step, loss: last.loss } : {}).catch((err) => {
      // 409/404: the lease expired or the task was decided without us: stop computing it.
      if (err instanceof CoordinatorError && err.status >= 400 && err.status < 500) lost.abort(err.reason);
    });
  }, heartbeatMs);
  const started = Date.now();
  try {
    const result = await opts.compute(lease, {
      signal,
      onProgress: (p) => {
        last = p;
        onEvent({ type: 'progress', taskId: lease.taskId, progress: p });
      },
    });
    clearInterval(beat);
    if (signal.aborted) throw signal.reason;
    const taskState = await client.submit(lease.leaseId, result);
    onEvent({ type: 'submitted', taskId: lease.taskId, taskState, ms: Date.now() - started });
    return true;
  } catch (err) {
    clearInterval(beat);
    if (opts.abort?.aborted && !lost.signal.aborted) {
      await client.release(lease.leaseId).catch(() => {});
      onEvent({ type: 'released', taskId: lease.taskId });
    } else {
      const reason = lost.signal.aborted
        ? String(lost.signal.reason)
        : err instanceof Error
          ? err.message
          : String(err);
      onEvent({ type: 'dropped', taskId: lease.taskId, reason });
      if (!lost.signal.aborted && !(err instanceof CoordinatorError)) {
        await client.release(lease.leaseId).catch(() => {});
      }
    }
    return false;
  }
}
