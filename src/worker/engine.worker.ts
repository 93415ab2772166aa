/**
 * The engine's dedicated Worker. The UI thread never computes: it calls this API through comlink,
 * and every kernel dispatch, CPU fallback and hash happens here.
 */
import * as Comlink from 'comlink';
import { type GpuReport, GpuSession, GpuUnavailableError } from '../gpu/device.ts';
import { runSelfTest, type SelfTestReport } from './selftest.ts';

export type GpuProbe = { ok: true; report: GpuReport } | { ok: false; error: string };

let session: GpuSession | undefined;
let lostReasons: string[] = [];

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

  /** Device-loss events seen since the last call (the session re-acquires on its own). */
  takeDeviceLosses(): string[] {
    const out = lostReasons;
    lostReasons = [];
    return out;
  },
};

export type EngineWorkerApi = typeof api;
Comlink.expose(api);
