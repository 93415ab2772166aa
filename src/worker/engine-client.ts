/** The UI side of the engine Worker: one Worker per page, wrapped by comlink. */
import * as Comlink from 'comlink';
import type { EngineWorkerApi } from './engine.worker.ts';

let remote: Comlink.Remote<EngineWorkerApi> | undefined;

export function engineWorker(): Comlink.Remote<EngineWorkerApi> {
  if (!remote) {
    const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), {
      type: 'module',
      name: 'engine',
    });
    remote = Comlink.wrap<EngineWorkerApi>(worker);
  }
  return remote;
}

/** A progress callback the Worker can call back across the thread boundary. */
export function progressProxy<T extends (...args: never[]) => void>(fn: T): T & Comlink.ProxyMarked {
  return Comlink.proxy(fn);
}
