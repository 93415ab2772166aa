/**
 * The tab's device check, run once per page: the Worker's WebGPU probe, then the conformance self-test
 * on WebGPU (or on the CPU when there is no adapter). Shared by the device panel and the contribute
 * controls, which must not offer GPU voting on a device that failed.
 */
import { useSyncExternalStore } from 'react';
import type { GpuProbe } from '../../worker/engine.worker.ts';
import { engineWorker } from '../../worker/engine-client.ts';
import type { SelfTestReport } from '../../worker/selftest.ts';

export type Async<T> =
  | { status: 'pending' }
  | { status: 'done'; value: T }
  | { status: 'failed'; error: string };

export interface DeviceCheck {
  probe: Async<GpuProbe>;
  selfTest: Async<SelfTestReport>;
  /** Results of a CPU self-test, run when the user chooses the CPU path after a GPU failure. */
  cpuSelfTest?: Async<SelfTestReport>;
}

let state: DeviceCheck = { probe: { status: 'pending' }, selfTest: { status: 'pending' } };
let started = false;
const listeners = new Set<() => void>();

function set(patch: Partial<DeviceCheck>) {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

async function run() {
  const worker = engineWorker();
  try {
    const probe = await worker.probeGpu();
    set({ probe: { status: 'done', value: probe } });
    const report = await worker.selfTest(probe.ok ? 'webgpu' : 'cpu');
    set({ selfTest: { status: 'done', value: report } });
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    if (state.probe.status === 'pending') set({ probe: { status: 'failed', error } });
    set({ selfTest: { status: 'failed', error } });
  }
}

/** Runs the CPU self-test (the fallback a failing GPU is offered). */
export async function runCpuSelfTest(): Promise<void> {
  set({ cpuSelfTest: { status: 'pending' } });
  try {
    set({ cpuSelfTest: { status: 'done', value: await engineWorker().selfTest('cpu') } });
  } catch (err) {
    set({ cpuSelfTest: { status: 'failed', error: err instanceof Error ? err.message : String(err) } });
  }
}

export function useDeviceCheck(): DeviceCheck {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      if (!started) {
        started = true;
        void run();
      }
      return () => listeners.delete(listener);
    },
    () => state,
  );
}

/** The backend this tab may vote with: WebGPU when it passed, the CPU when that passed; else none. */
export function votingBackend(check: DeviceCheck): 'webgpu' | 'cpu' | undefined {
  const gpu = check.selfTest.status === 'done' ? check.selfTest.value : undefined;
  if (gpu?.passed) return gpu.backend as 'webgpu' | 'cpu';
  const cpu = check.cpuSelfTest?.status === 'done' ? check.cpuSelfTest.value : undefined;
  return cpu?.passed ? 'cpu' : undefined;
}
