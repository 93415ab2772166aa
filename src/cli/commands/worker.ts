import type { WorkerEvent } from '../../coordinator/client.ts';
import { adapterLabel } from '../../gpu/device.ts';
import { createNodeGpuSession } from '../../gpu/node.ts';
import { loadOrCreateKey, runHeadlessWorker } from '../../worker/headless/worker.ts';
import { runSelfTest } from '../../worker/selftest.ts';
import { type Command, intOption, parseOptions } from '../command.ts';

const short = (hex: string) => `${hex.slice(0, 10)}…`;

function describeEvent(event: WorkerEvent): string | undefined {
  switch (event.type) {
    case 'leased':
      return `leased ${short(event.lease.taskId)} (${event.lease.spec.training.steps} steps, ${event.lease.spec.dataset.name})`;
    case 'progress':
      return `  step ${event.progress.step}/${event.progress.steps} loss ${event.progress.loss?.toFixed(4) ?? '?'}`;
    case 'submitted':
      return `submitted ${short(event.taskId)} in ${event.ms} ms → task ${event.taskState}`;
    case 'dropped':
      return `dropped ${short(event.taskId)}: ${event.reason}`;
    case 'released':
      return `gave back the lease on ${short(event.taskId)}`;
    case 'error':
      return `coordinator unreachable or refused: ${event.error} (retrying)`;
    case 'state':
      return event.uploaded
        ? `sent the referee my state of ${short(event.taskId)} at step ${event.step}`
        : `could not send the referee my state of ${short(event.taskId)} at step ${event.step}: ${event.reason ?? 'unknown'}`;
    case 'idle':
      return undefined;
  }
}

export const command: Command = {
  name: 'worker',
  summary: 'contribute this machine to a coordinator (headless)',
  help: `usage: cambrian worker --coordinator URL [--key-file F] [--backend auto|webgpu|cpu] [--max-tasks N] [--json]

Signs a session grant with the worker's own key, runs the conformance self-test, then leases tasks,
trains them, and submits signed results until stopped.
  --coordinator URL      the coordinator's base URL (e.g. http://127.0.0.1:8787)
  --key-file F           the worker's private key (created with mode 0600 if missing; default .data/worker-key.json)
  --backend auto|webgpu|cpu   auto (default): WebGPU (Dawn) on a hardware GPU, else the CPU reference,
                         which is faster than a software adapter such as SwiftShader; webgpu falls back
                         to the CPU if the self-test fails
  --max-tasks N          stop after N accepted results
  --json                 one JSON line per event
  --heartbeat-ms N       heartbeat interval (default 5000)
  --skip-selftest        take work without the self-test (tests only)
  --dishonest            report a wrong result on purpose (fault tests and demos; earns strikes)
Ctrl-C once: finish the current task, submit it and stop. Twice: give the lease back and stop now.`,
  async run(argv) {
    const opts = parseOptions(argv, {
      coordinator: { type: 'string' },
      'key-file': { type: 'string', default: '.data/worker-key.json' },
      backend: { type: 'string', default: 'auto' },
      'max-tasks': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'skip-selftest': { type: 'boolean', default: false },
      dishonest: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (!opts.coordinator) throw new Error('--coordinator URL is required');
    if (opts.backend !== 'auto' && opts.backend !== 'webgpu' && opts.backend !== 'cpu') {
      throw new Error(`--backend must be auto, webgpu or cpu, got '${opts.backend}'`);
    }
    const print = (line: string, obj: Record<string, unknown>) =>
      console.log(opts.json ? JSON.stringify({ t: Date.now(), ...obj }) : line);
    let backend: 'webgpu' | 'cpu' = opts.backend === 'auto' ? await autoBackend(print) : opts.backend;

    const { account, created } = await loadOrCreateKey(opts['key-file']);
    print(`worker ${account.address}${created ? ` (new key saved to ${opts['key-file']})` : ''}`, {
      type: 'worker',
      address: account.address,
    });

    if (!opts['skip-selftest']) {
      const session = backend === 'webgpu' ? await createNodeGpuSession().catch(() => undefined) : undefined;
      const report = await runSelfTest(backend, session && (async () => session));
      session?.destroy();
      const where = report.adapter ? ` on ${adapterLabel(report.adapter)}` : '';
      print(
        `self-test ${report.passed ? 'passed' : 'FAILED'} (${backend}${where}, ${Math.round(report.ms)} ms)`,
        {
          type: 'selftest',
          backend,
          passed: report.passed,
        },
      );
      if (!report.passed) {
        if (backend === 'cpu') throw new Error(`the CPU self-test failed: ${report.error ?? 'see checks'}`);
        print('falling back to the CPU reference', { type: 'fallback', backend: 'cpu' });
        backend = 'cpu';
      }
    }

    const stop = new AbortController();
    const abort = new AbortController();
    const onSigint = () => {
      if (!stop.signal.aborted) {
        print('stopping after the current task (Ctrl-C again to give the lease back now)', {
          type: 'stopping',
        });
        stop.abort();
      } else abort.abort();
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', () => abort.abort());
    try {
      const done = await runHeadlessWorker({
        coordinator: opts.coordinator,
        account,
        backend,
        stop: stop.signal,
        abort: abort.signal,
        maxTasks:
          opts['max-tasks'] === undefined ? undefined : intOption(opts['max-tasks'], '--max-tasks', 0, 1),
        heartbeatMs: intOption(opts['heartbeat-ms'], '--heartbeat-ms', 5000, 50),
        dishonest: opts.dishonest,
        onEvent: (event) => {
          const line = describeEvent(event);
          if (line)
            print(
              line,
              event.type === 'leased' ? { type: 'leased', taskId: event.lease.taskId } : { ...event },
            );
        },
      });
      print(`stopped after ${done} accepted result(s)`, { type: 'stopped', results: done });
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

/**
 * WebGPU only where it is a real GPU: on a software adapter (SwiftShader, llvmpipe) the CPU reference
 * trains several times faster (docs/KERNELS.md), and both give the same bits.
 */
async function autoBackend(
  print: (line: string, obj: Record<string, unknown>) => void,
): Promise<'webgpu' | 'cpu'> {
  const session = await createNodeGpuSession().catch(() => undefined);
  const report = await session?.report().catch(() => undefined);
  session?.destroy();
  if (report && !report.isSoftware) return 'webgpu';
  const why = report ? `${adapterLabel(report)} is a software adapter` : 'no WebGPU adapter';
  print(`backend: cpu (${why}; the CPU reference is faster and gives the same bits)`, {
    type: 'backend',
    backend: 'cpu',
    reason: why,
  });
  return 'cpu';
}
