/**
 * Starts the embedded chain: anvil from the @foundry-rs/anvil npm package. Node only.
 * Random free port by default (anvil binds port 0 and prints the port it got), waits until the node
 * answers JSON-RPC, and kills it when stopped or when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './build.ts';

export interface AnvilOptions {
  /** TCP port; 0 (default) lets the OS pick a free one. */
  port?: number;
  host?: string;
  chainId?: number;
  /** Extra command-line arguments for anvil. */
  args?: string[];
  /** How long to wait for the node to answer (ms). */
  timeoutMs?: number;
}

export interface AnvilNode {
  rpcUrl: string;
  port: number;
  chainId: number;
  pid: number;
  /** Resolves when the node exits, for whatever reason. */
  exited: Promise<void>;
  /** Stops the node and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** The anvil executable: $ANVIL_BIN, the platform package's binary, or the npm wrapper. */
export function anvilBinary(): string {
  if (process.env.ANVIL_BIN) return process.env.ANVIL_BIN;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const platformBinary = join(
    ROOT,
    'node_modules',
    '@foundry-rs',
    `anvil-${process.platform}-${arch}`,
    'bin',
    'anvil',
  );
  // The native binary directly: one process to signal instead of a node wrapper plus a child.
  if (existsSync(platformBinary)) return platformBinary;
  return join(ROOT, 'node_modules', '.bin', 'anvil');
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Kills the nodes this process started when it exits, and when it is told to stop by a signal:
 * Node skips 'exit' handlers on a default (unhandled) signal death. If nobody else handles the
 * signal, the default behaviour (terminate) is restored and the signal raised again.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const child of running) child.kill('SIGTERM');
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

async function rpcAnswers(rpcUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    });
    const body = (await res.json()) as { result?: string };
    return body.result ? Number(body.result) : undefined;
  } catch {
    return undefined;
  }
}

function waitForListeningLine(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`anvil did not start within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Listening on ([\d.]+|\[[^\]]+\]|[\w.-]+):(\d+)/.exec(output);
      if (match) {
        cleanup();
        resolve({ host: match[1], port: Number(match[2]) });
      }
    };
    const onExit = (code: number | null) => fail(new Error(`anvil exited with code ${code}:\n${output}`));
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', fail);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', fail);
  });
}

/** Starts anvil and resolves once it answers eth_chainId. */
export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilNode> {
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? 20_000;
  const args = ['--host', host, '--port', String(options.port ?? 0)];
  if (options.chainId !== undefined) args.push('--chain-id', String(options.chainId));
  args.push(...(options.args ?? []));

  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  installExitHook();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };

  try {
    const { port } = await waitForListeningLine(child, timeoutMs);
    // Keep draining output so a chatty node never blocks on a full pipe.
    child.stdout?.resume();
    child.stderr?.resume();
    const rpcUrl = `http://${host}:${port}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const chainId = await rpcAnswers(rpcUrl);
      if (chainId !== undefined) return { rpcUrl, port, chainId, pid: child.pid ?? -1, exited, stop };
      if (Date.now() > deadline) throw new Error(`anvil at ${rpcUrl} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
