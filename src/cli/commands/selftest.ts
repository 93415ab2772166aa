import { adapterLabel } from '../../gpu/device.ts';
import { createNodeGpuSession } from '../../gpu/node.ts';
import { runSelfTest } from '../../worker/selftest.ts';
import { backendOption, type Command, parseOptions } from '../command.ts';

export const command: Command = {
  name: 'selftest',
  summary: 'check that this machine computes bit-identical results (exit 1 if not)',
  help: `usage: cambrian selftest [--backend webgpu|cpu] [--json]

Runs the conformance self-test a worker runs before it takes work: integer kernels on the chosen
backend compared bit for bit with the CPU reference, and pinned digests of small training tasks.
  --backend webgpu|cpu   webgpu (default) uses Dawn: the GPU's Vulkan driver, or SwiftShader without a GPU
  --json                 print the report as JSON`,
  async run(argv) {
    const opts = parseOptions(argv, {
      backend: { type: 'string', default: 'webgpu' },
      json: { type: 'boolean', default: false },
    });
    const backend = backendOption(opts.backend);

    const session = backend === 'webgpu' ? await createNodeGpuSession() : undefined;
    try {
      const report = await runSelfTest(backend, session && (async () => session));
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        if (report.adapter) console.log(`adapter: ${adapterLabel(report.adapter)}`);
        for (const c of report.checks) console.log(`${c.passed ? 'pass' : 'FAIL'}  ${c.name}: ${c.detail}`);
        console.log(`${report.passed ? 'PASSED' : 'FAILED'} on ${backend} in ${Math.round(report.ms)} ms`);
        if (report.error) console.log(report.error);
      }
      return report.passed ? 0 : 1;
    } finally {
      session?.destroy();
    }
  },
};
