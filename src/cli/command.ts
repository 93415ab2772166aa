import { readFile } from 'node:fs/promises';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Backend } from '../engine/types.ts';
import { type AnyTaskSpec, parseAnyTaskSpec, parseTaskSpec, type TaskSpec } from '../protocol/spec.ts';

/** One `cambrian` subcommand. `run` returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  hidden?: boolean;
  run(argv: string[]): Promise<number>;
}

/** Strict option parsing: unknown flags are an error with the flag named, not silently ignored. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
}

/** Parses an integer option, naming the flag in the error. */
export function intOption(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`${flag} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

/** `--backend cpu|webgpu`, naming the bad value. */
export function backendOption(value: string): Backend {
  if (value !== 'cpu' && value !== 'webgpu')
    throw new Error(`--backend must be cpu or webgpu, got '${value}'`);
  return value;
}

/** Reads and validates a task spec file; errors name the file. */
/** Reads and validates a task spec file of any version (v1 MLP or v2 conv). */
export async function readAnySpecFile(path: string): Promise<AnyTaskSpec> {
  const text = await readFile(path, 'utf8');
  try {
    return parseAnyTaskSpec(JSON.parse(text));
  } catch (err) {
    throw new Error(`${path} is not a valid task spec: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function readSpecFile(path: string): Promise<TaskSpec> {
  const text = await readFile(path, 'utf8');
  try {
    return parseTaskSpec(JSON.parse(text));
  } catch (err) {
    throw new Error(`${path} is not a valid task spec: ${err instanceof Error ? err.message : String(err)}`);
  }
}
