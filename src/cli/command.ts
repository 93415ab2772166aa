import { type ParseArgsConfig, parseArgs } from 'node:util';

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
