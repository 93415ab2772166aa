/**
 * Benchmark registry for `cambrian bench <name>`. Each benchmark is one module src/bench/<name>.ts
 * exporting `run(argv): Promise<number>` (the exit code) and optionally `help`. Modules are loaded
 * only when asked for, and a name whose file does not exist yet is reported as unavailable, so
 * benchmarks can land independently.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BenchModule {
  run(argv: string[]): Promise<number>;
  /** Shown by `cambrian bench <name> --help` (or `cambrian bench help <name>`). */
  help?: string;
}

/** Known benchmarks and what each measures. */
export const BENCHMARKS = {
  gas: 'Settlement gas per task: batches of 1/10/50, 2 and 3 votes, first-time vs returning workers',
  engine: 'training throughput: CPU reference, WebGPU in Node and in Chromium, vs TensorFlow.js',
  search: 'architecture search: strategies compared at equal budget',
  coordinator: 'coordinator: accepted results per second and lease latency with simulated workers',
  mainthread:
    'the page main thread while a tab contributes: long tasks attributed to scripts (from the e2e run)',
  adversary: 'colluding Sybils against a simulated network: wrong results settled, shares, strikes',
} as const;

export type BenchName = keyof typeof BENCHMARKS;

export function isBenchName(name: string): name is BenchName {
  return Object.hasOwn(BENCHMARKS, name);
}

function moduleUrl(name: BenchName): URL {
  return new URL(`./${name}.ts`, import.meta.url);
}

export function benchAvailable(name: BenchName): boolean {
  return existsSync(fileURLToPath(moduleUrl(name)));
}

/** Loads src/bench/<name>.ts, or returns undefined if that benchmark has not been written. */
export async function loadBench(name: BenchName): Promise<BenchModule | undefined> {
  if (!benchAvailable(name)) return undefined;
  const mod = (await import(`./${name}.ts`)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') throw new Error(`src/bench/${name}.ts does not export run(argv)`);
  return mod as BenchModule;
}
