/**
 * The real stack for end-to-end tests: `cambrian up --workers 1 --json` (anvil, the Settlement
 * contract, the coordinator on PGlite serving the built app, one headless worker) on free ports, or
 * an already running one named by CAMBRIAN_STACK='{"app":…,"rpcUrl":…}'.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Address, createPublicClient, http } from 'viem';
import { readSettledEvents } from '../src/chain/client.ts';
import { freePort } from '../src/coordinator/testing.ts';

export interface Stack {
  app: string;
  api: string;
  rpcUrl: string;
  chainId: number;
  settlement: string;
  stop(): Promise<void>;
}

/** `up` with one worker and tiny specs on the generated dataset, so a task finishes quickly on SwiftShader. */
async function upArgs(dataDir: string): Promise<string[]> {
  const extra = process.env.CAMBRIAN_UP_ARGS ?? '--track blobs --strategy random --steps 20 --budget 40';
  return [
    'up',
    '--workers',
    '1',
    '--json',
    '--port',
    String(await freePort()),
    '--chain-port',
    String(await freePort()),
    '--data-dir',
    dataDir,
    ...extra.split(/\s+/).filter(Boolean),
  ];
}

export async function startStack(timeoutMs = 120_000): Promise<Stack> {
  if (process.env.CAMBRIAN_STACK) {
    return { ...(JSON.parse(process.env.CAMBRIAN_STACK) as Omit<Stack, 'stop'>), stop: async () => {} };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'cambrian-e2e-'));
  const child = spawn(process.execPath, ['bin/cambrian.mjs', ...(await upArgs(dataDir))], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const info = await firstJsonLine(child, timeoutMs).catch((err: Error) => {
    killGroup(child);
    throw new Error(`${err.message}\n${stderr.join('').slice(-4000)}`);
  });
  return {
    ...(info as Omit<Stack, 'stop'>),
    stop: async () => {
      killGroup(child);
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function firstJsonLine(child: ChildProcess, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`cambrian up printed no JSON line in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const text = line.trim();
      if (!text.startsWith('{')) return;
      try {
        const parsed = JSON.parse(text) as { app?: string };
        if (!parsed.app) return;
        clearTimeout(timer);
        resolve(parsed);
      } catch {
        // not the info line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cambrian up exited with ${code} before it was ready`));
    });
  });
}

/** SIGTERM to the whole process group `up` leads (anvil, coordinator, workers), by its id. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}

/**
 * The first TaskSettled event that credits `worker`, read from the chain, once `count` of them exist
 * (waiting from Node keeps the test's own work off the page's main thread).
 */
export async function waitForSettlement(
  stack: Pick<Stack, 'rpcUrl' | 'settlement'>,
  worker: string,
  timeoutMs: number,
  count = 1,
): Promise<string> {
  const client = createPublicClient({ transport: http(stack.rpcUrl) });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const events = await readSettledEvents(client, stack.settlement as Address);
    const ours = events.filter((e) => e.winners.some((w) => w.toLowerCase() === worker.toLowerCase()));
    if (ours.length >= count) return ours[0].taskId;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`fewer than ${count} tasks credited to ${worker} settled within ${timeoutMs} ms`);
}
