#!/usr/bin/env node
// The `cambrian` command. Runs the TypeScript sources directly through tsx, so there is no
// separate build step between editing and running.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
