import { BENCHMARKS, type BenchName, benchAvailable, isBenchName, loadBench } from '../../bench/index.ts';
import type { Command } from '../command.ts';

function listing(): string {
  return Object.entries(BENCHMARKS)
    .map(
      ([name, what]) =>
        `  ${name.padEnd(13)}${what}${benchAvailable(name as BenchName) ? '' : ' (not available yet)'}`,
    )
    .join('\n');
}

export const command: Command = {
  name: 'bench',
  summary: 'run a benchmark: gas, engine, search, coordinator, adversary, mainthread',
  get help() {
    return `usage: cambrian bench <name> [options]

Benchmarks are scripts, not tests: each prints a table and writes JSON under bench-results/.
Run \`cambrian bench <name> --help\` for a benchmark's options.

benchmarks:
${listing()}`;
  },
  async run(argv) {
    const [first, ...others] = argv;
    const asksHelp = first === 'help' || others.includes('--help') || others.includes('-h');
    const [name, ...rest] = first === 'help' ? others : argv;
    if (!name || name.startsWith('-')) {
      console.error(this.help);
      return 2;
    }
    if (!isBenchName(name)) {
      console.error(`cambrian bench: unknown benchmark '${name}'\n\n${listing()}`);
      return 2;
    }
    const bench = await loadBench(name);
    if (!bench) {
      console.error(
        `cambrian bench: '${name}' is not available in this checkout (src/bench/${name}.ts is missing)`,
      );
      return 2;
    }
    if (asksHelp) {
      console.log(bench.help ?? `cambrian bench ${name}: no options documented`);
      return 0;
    }
    return bench.run(rest);
  },
};
