/**
 * CLI entry: `cambrian <command> [...args]`. Each command is one file in ./commands exporting
 * `command: Command`; main only dispatches, so commands are added without touching this file.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.ts';

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

async function loadCommand(name: string): Promise<Command | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) return undefined;
  const files = await readdir(commandsDir);
  if (!files.includes(`${name}.ts`)) return undefined;
  const mod = (await import(`./commands/${name}.ts`)) as { command: Command };
  return mod.command;
}

async function usage(): Promise<string> {
  const files = (await readdir(commandsDir))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort();
  const lines = ['usage: cambrian <command> [options]', '', 'commands:'];
  for (const file of files) {
    const cmd = await loadCommand(file.slice(0, -3));
    if (cmd && !cmd.hidden) lines.push(`  ${cmd.name.padEnd(16)}${cmd.summary}`);
  }
  lines.push('', 'Run `cambrian <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    console.error(`cambrian: unknown command '${name}'\n\n${await usage()}`);
    return 2;
  }
  // Only a leading --help is ours: `cambrian bench gas --help` belongs to the bench command.
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
