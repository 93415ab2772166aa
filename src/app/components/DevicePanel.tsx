import type { GpuProbe } from '../../worker/engine.worker.ts';
import type { SelfTestReport } from '../../worker/selftest.ts';
import { type Async, runCpuSelfTest, useDeviceCheck } from '../lib/device.ts';
import { formatBytes } from '../lib/format.ts';

/**
 * The Worker's graphics report and self-test: whether this tab may vote, in plain words first, with the
 * technical details behind a disclosure so they do not push Start down. A failing device opens it.
 */
export function DevicePanel() {
  const check = useDeviceCheck();
  const gpuFailed =
    check.selfTest.status === 'failed' || (check.selfTest.status === 'done' && !check.selfTest.value.passed);
  return (
    <section className="card" aria-labelledby="device-title" data-testid="device-panel">
      <h2 id="device-title">Your device</h2>
      <p data-testid="device-verdict">{verdict(check.selfTest)}</p>
      {gpuFailed && <CpuFallback state={check.cpuSelfTest} />}
      <details className="device-details" open={gpuFailed}>
        <summary>Details: graphics chip and self-test</summary>
        <GpuSummary probe={check.probe} />
        <SelfTestSummary state={check.selfTest} />
      </details>
    </section>
  );
}

function verdict(state: Async<SelfTestReport>): string {
  if (state.status === 'pending') return 'Checking that this device computes exactly like everyone else…';
  if (state.status === 'failed') return 'The check could not run on this device.';
  const t = state.value;
  if (!t.passed) return 'This device gives slightly different numbers from everyone else, so it cannot vote.';
  return t.backend === 'webgpu'
    ? 'Ready: your graphics chip computes exactly the same numbers as everyone else.'
    : 'Ready on the processor (no usable graphics chip): slower, but exactly the same numbers.';
}

function GpuSummary({ probe }: { probe: Async<GpuProbe> }) {
  if (probe.status === 'pending') return <p className="muted">Looking for a graphics chip (WebGPU)…</p>;
  if (probe.status === 'failed' || !probe.value.ok) {
    const error = probe.status === 'failed' ? probe.error : (probe.value as { error: string }).error;
    return (
      <p className="warn" data-testid="gpu-missing">
        No graphics chip available to this tab (WebGPU: {error}). You can still contribute on the processor,
        more slowly.
      </p>
    );
  }
  const r = probe.value.report;
  return (
    <div data-testid="gpu-report">
      <dl className="facts">
        <dt>Graphics chip</dt>
        <dd data-testid="gpu-adapter">
          {[r.vendor, r.architecture, r.description || r.device].filter(Boolean).join(' · ') ||
            'unnamed adapter'}
          {r.isSoftware && <span className="badge">software</span>}
        </dd>
        <dt>Fast 8-bit arithmetic</dt>
        <dd data-testid="gpu-packed-dot">
          {r.wgslLanguageFeatures.includes('packed_4x8_integer_dot_product')
            ? 'yes (dot4I8Packed)'
            : 'no (plain i32 path)'}
        </dd>
        <dt>Largest buffer</dt>
        <dd>{formatBytes(r.limits.maxStorageBufferBindingSize)}</dd>
        <dt>Workgroup memory</dt>
        <dd>{formatBytes(r.limits.maxComputeWorkgroupStorageSize)}</dd>
        <dt>Invocations per workgroup</dt>
        <dd>{r.limits.maxComputeInvocationsPerWorkgroup}</dd>
      </dl>
      <details>
        <summary>WGSL language features ({r.wgslLanguageFeatures.length})</summary>
        <ul className="chips">
          {r.wgslLanguageFeatures.map((f) => (
            <li key={f}>{f}</li>
          ))}
        </ul>
      </details>
    </div>
  );
}

function SelfTestSummary({ state }: { state: Async<SelfTestReport> }) {
  if (state.status === 'pending') {
    return (
      <p className="muted" role="status">
        Running the self-test (does this device compute bit-for-bit like the reference?)…
      </p>
    );
  }
  if (state.status === 'failed') {
    return (
      <p className="warn" role="alert" data-testid="selftest-error">
        Self-test could not run: {state.error}
      </p>
    );
  }
  return <SelfTestResult report={state.value} testId="selftest" />;
}

/** 'webgpu', or 'cpu' with the kernels it ran (WebAssembly SIMD, or plain TypeScript without it). */
function backendLabel(t: SelfTestReport): string {
  if (t.backend !== 'cpu' || !t.cpuKernels) return t.backend;
  return t.cpuKernels === 'wasm' ? 'cpu (WebAssembly SIMD)' : 'cpu (plain JavaScript)';
}

function SelfTestResult({ report: t, testId }: { report: SelfTestReport; testId: string }) {
  return (
    <div data-testid={testId} data-passed={String(t.passed)}>
      <p className={t.passed ? 'ok' : 'warn'} role="status" data-testid={`${testId}-verdict`}>
        {t.passed
          ? `Self-test passed on ${backendLabel(t)} in ${Math.round(t.ms)} ms: results are bit-identical to the reference.`
          : `Self-test failed on ${backendLabel(t)}: this device will not vote.${t.error ? ` ${t.error}` : ''}`}
      </p>
      <ul className="checks">
        {t.checks.map((c) => (
          <li key={c.name} className={c.passed ? 'ok' : 'warn'}>
            <span aria-hidden="true">{c.passed ? '✓' : '✗'}</span> {c.name}{' '}
            <span className="muted">— {c.detail}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** A GPU that failed is explained above; here the CPU path is offered instead. */
function CpuFallback({ state }: { state?: Async<SelfTestReport> }) {
  if (!state) {
    return (
      <div className="callout">
        <p>
          This GPU gives results that differ from the integer reference, so votes from it would be wrong and
          cost you strikes. The CPU path computes the same integers, only slower.
        </p>
        <button type="button" className="secondary" onClick={() => void runCpuSelfTest()}>
          Use the CPU instead
        </button>
      </div>
    );
  }
  if (state.status === 'pending')
    return (
      <p className="muted" role="status">
        Checking the CPU path…
      </p>
    );
  if (state.status === 'failed')
    return (
      <p className="warn" role="alert">
        CPU self-test could not run: {state.error}
      </p>
    );
  return <SelfTestResult report={state.value} testId="cpu-selftest" />;
}
