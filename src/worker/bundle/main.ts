/**
 * Entry of the standalone headless worker bundle (`npm run build:worker` → dist/worker/cambrian.mjs).
 *
 * The dev CLI (src/cli/main.ts) finds its commands by listing src/cli/commands/*.ts at run time,
 * which a single-file bundle cannot do; this entry imports the commands a GPU server needs
 * statically instead. `bench` here runs only `bench engine --no-browser`: the bundle carries no
 * browser, Vite or Playwright.
 */
import * as engineBench from '../../bench/engine.ts';
import type { Command } from '../../cli/command.ts';
import { command as selftest } from '../../cli/commands/selftest.ts';
import { command as spec } from '../../cli/commands/spec.ts';
import { command as train } from '../../cli/commands/train.ts';
import { command as worker } from '../../cli/commands/worker.ts';

const bench: Command = {
  name: 'bench',
  summary: 'engine --no-browser: training throughput on the CPU reference and WebGPU (Dawn)',
  help: `usage: cambrian bench engine --no-browser [options]\n\n${engineBench.help}`,
  async run(argv) {
    const [name, ...rest] = argv;
    if (name !== 'engine') {
      console.error(`cambrian bench: this bundle has only 'engine' (got '${name ?? ''}')`);
      return 2;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(this.help);
      return 0;
    }
    if (!rest.includes('--no-browser')) {
      console.error('cambrian bench engine: this bundle carries no browser; add --no-browser');
      return 2;
    }
    return engineBench.run(rest);
  },
};

const COMMANDS: Record<string, Command> = { worker, selftest, train, spec, bench };

function usage(): string {
  const lines = ['usage: cambrian.mjs <command> [options]   (standalone worker bundle)', '', 'commands:'];
  for (const cmd of Object.values(COMMANDS)) lines.push(`  ${cmd.name.padEnd(12)}${cmd.summary}`);
  lines.push('', 'Run `node cambrian.mjs <command> --help` for its options.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`cambrian: '${name}' is not in the worker bundle\n\n${usage()}`);
    return 2;
  }
  if (rest[0] === '--help' || rest[0] === '-h') {
    console.log(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    console.error(`cambrian ${name}: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.CAMBRIAN_DEBUG) console.error(err);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
