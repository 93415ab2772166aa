/**
 * The engine's dedicated Worker. The UI thread never computes: it calls this API through comlink,
 * and every kernel dispatch, CPU fallback and hash happens here.
 */
import * as Comlink from 'comlink';
import type { Address, Hex, LocalAccount } from 'viem';
import { decodeDataset } from '../data/format.ts';
import { train } from '../engine/train.ts';
import type { Backend, Dataset, TrainProgress, TrainState } from '../engine/types.ts';
import { type GpuReport, GpuSession, GpuUnavailableError } from '../gpu/device.ts';
import { buildOnnx } from '../onnx/build.ts';
import { type CambrianDomain, createSessionKey, resultVoteTypedData } from '../protocol/eip712.ts';
import type { AuditJob, AuditWork, StateUpload } from '../protocol/http.ts';
import type { TaskResult } from '../protocol/result.ts';
import type { AnyTaskSpec } from '../protocol/spec.ts';
import { replayAuditJob } from './replay-job.ts';
import { runSelfTest, type SelfTestReport } from './selftest.ts';
import { keepingStates, StateMemory } from './state-memory.ts';

export type GpuProbe = { ok: true; report: GpuReport } | { ok: false; error: string };

let session: GpuSession | undefined;
let lostReasons: string[] = [];
/**
 * The contributor's session key lives here, in the Worker's memory only: secp256k1 work (key
 * derivation, signing every vote) then never blocks the page, and the key never crosses to the UI.
 */
let sessionKey: LocalAccount | undefined;
/** Decoded datasets by sha256: a tab trains many tasks on the same data. */
const datasets = new Map<string, Promise<Dataset>>();
/** The training job in flight, so the page can cancel it. */
let inFlight: AbortController | undefined;
/**
 * Checkpoint states of the tab's last few tasks, for the audit's and the referee's state requests
 * (the same memory as the headless worker's, smaller: a tab shares the machine with its user).
 */
const kept = new StateMemory(4, 64 * 1024 * 1024);

/** Where to fetch a dataset's canonical binary, and the name and content hash it must have. */
export interface DatasetSource {
  name: string;
  sha256: string;
  url: string;
}

export interface TrainJob {
  spec: AnyTaskSpec;
  dataset: DatasetSource;
  backend: Backend;
  /** Report progress every this many steps (the page throttles its own repaints too). */
  progressEvery?: number;
  /** Keep the checkpoint states under this task id, to answer state requests (`stateUpload`). */
  taskId?: Hex;
}

function loadDataset(source: DatasetSource): Promise<Dataset> {
  let pending = datasets.get(source.sha256);
  if (!pending) {
    pending = fetch(source.url).then(async (response) => {
      if (!response.ok) throw new Error(`dataset '${source.name}': GET ${source.url} → ${response.status}`);
      return decodeDataset(source.name, new Uint8Array(await response.arrayBuffer()), source.sha256);
    });
    pending.catch(() => datasets.delete(source.sha256));
    datasets.set(source.sha256, pending);
  }
  return pending;
}

async function runJob(
  job: TrainJob,
  onProgress?: (p: TrainProgress) => void,
  onCheckpoint?: (state: TrainState) => void,
): Promise<TaskResult> {
  inFlight?.abort(new Error('superseded by a newer task'));
  const controller = new AbortController();
  inFlight = controller;
  try {
    const dataset = await loadDataset(job.dataset);
    const device = job.backend === 'webgpu' ? await gpuSession().device() : undefined;
    return await train(job.spec, dataset, {
      backend: job.backend,
      device,
      signal: controller.signal,
      progressEvery: job.progressEvery ?? 1,
      onProgress,
      onCheckpoint,
    });
  } finally {
    if (inFlight === controller) inFlight = undefined;
  }
}

function gpuSession(): GpuSession {
  if (!('gpu' in navigator) || !navigator.gpu) {
    throw new GpuUnavailableError('this browser exposes no WebGPU (navigator.gpu) inside Workers');
  }
  session ??= new GpuSession(navigator.gpu, { onDeviceLost: (reason) => lostReasons.push(reason) });
  return session;
}

const api = {
  /** Adapter, limits and WGSL language features of the Worker's WebGPU adapter. */
  async probeGpu(): Promise<GpuProbe> {
    try {
      return { ok: true, report: await gpuSession().report() };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  },

  /** Conformance self-test on the chosen backend; a device that fails never votes. */
  async selfTest(backend: 'webgpu' | 'cpu'): Promise<SelfTestReport> {
    return runSelfTest(backend, backend === 'webgpu' ? () => Promise.resolve(gpuSession()) : undefined);
  },

  /**
   * Trains one task spec and resolves to its signed-ready result. `onProgress` is a comlink proxy
   * from the page; a device lost mid-task rejects, and the next call re-acquires a device.
   */
  async train(job: TrainJob, onProgress?: (p: TrainProgress) => void): Promise<TaskResult> {
    if (!job.taskId) return runJob(job, onProgress);
    return keepingStates(kept, job.taskId, (onCheckpoint) => runJob(job, onProgress, onCheckpoint));
  },

  /**
   * Answers an audit job (verification work drawn for this tab): replays its span on the CPU
   * reference, here off the page's thread. Spans are short, and every backend gives these bits.
   */
  async replay(job: AuditJob, dataset: DatasetSource): Promise<AuditWork> {
    return replayAuditJob(job, await loadDataset(dataset));
  },

  /** The `POST /states` body for a kept checkpoint state (encoded here, off the page's thread). */
  stateUpload(taskId: Hex, step: number): StateUpload | undefined {
    return kept.upload(taskId, step);
  },

  /**
   * Trains a spec and also returns its final master weights (i32, canonical order), e.g. to export a
   * leaderboard model to ONNX and check it against the weightsHash recorded on chain.
   */
  async trainWeights(
    job: TrainJob,
    onProgress?: (p: TrainProgress) => void,
  ): Promise<{ result: TaskResult; params: Int32Array }> {
    let last: TrainState | undefined;
    const result = await runJob(job, onProgress, (state) => {
      last = state;
    });
    if (!last) throw new Error('training produced no checkpoint');
    return Comlink.transfer({ result, params: last.params }, [last.params.buffer as ArrayBuffer]);
  },

  /**
   * Re-trains a settled spec (training is deterministic, so this reproduces the voted result bit for
   * bit) and exports the final weights as ONNX. The caller compares `result.digest` with the chain.
   */
  async exportOnnx(
    job: TrainJob,
    metadata: Record<string, string>,
    onProgress?: (p: TrainProgress) => void,
  ): Promise<{ result: TaskResult; onnx: Uint8Array }> {
    let last: TrainState | undefined;
    const result = await runJob(job, onProgress, (state) => {
      last = state;
    });
    if (!last) throw new Error('training produced no checkpoint');
    const onnx = buildOnnx(job.spec, last.params, {
      metadata: { ...metadata, digest: result.digest, weightsHash: result.weightsHash },
    });
    return Comlink.transfer({ result, onnx }, [onnx.buffer as ArrayBuffer]);
  },

  /** Runs an exported model on one input row (intensities in [0, 1]) with onnxruntime-web. */
  async classify(onnx: Uint8Array, pixels: Float32Array): Promise<number[]> {
    const ort = await import('onnxruntime-web/wasm');
    ort.env.wasm.numThreads = 1; // no cross-origin isolation, so no wasm threads
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'] });
    try {
      const input = new ort.Tensor('float32', pixels, [1, pixels.length]);
      const output = await session.run({ [session.inputNames[0]]: input });
      return Array.from(output[session.outputNames[0]].data as Float32Array);
    } finally {
      await session.release();
    }
  },

  /** Replaces the session key with a fresh one and returns its address (for the wallet's grant). */
  newSessionKey(): Address {
    sessionKey = createSessionKey();
    return sessionKey.address;
  },

  /** The session key's ResultVote signature; the key must be the one the grant authorised. */
  async signVote(
    domain: CambrianDomain,
    vote: { taskId: Hex; digest: Hex; worker: Address },
    expected: Address,
  ): Promise<Hex> {
    if (!sessionKey || sessionKey.address !== expected) throw new Error('this session key is no longer held');
    if (!sessionKey.signTypedData) throw new Error('the session key cannot sign typed data');
    return sessionKey.signTypedData(resultVoteTypedData(domain, vote));
  },

  /** Cancels the task in flight (it rejects at its next step boundary). */
  cancel(): void {
    inFlight?.abort(new Error('cancelled'));
  },

  /** Device-loss events seen since the last call (the session re-acquires on its own). */
  takeDeviceLosses(): string[] {
    const out = lostReasons;
    lostReasons = [];
    return out;
  },
};

export type EngineWorkerApi = typeof api;
Comlink.expose(api);
