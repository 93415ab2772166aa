import { useEffect, useState } from 'react';
import type { GpuProbe } from '../../worker/engine.worker.ts';
import { engineWorker } from '../../worker/engine-client.ts';
import type { SelfTestReport } from '../../worker/selftest.ts';

type State<T> = { status: 'pending' } | { status: 'done'; value: T } | { status: 'failed'; error: string };

/** The worker's GPU report and conformance self-test: what this tab can contribute, and whether it may vote. */
export function DevicePanel() {
  const [probe, setProbe] = useState<State<GpuProbe>>({ status: 'pending' });
  const [selfTest, setSelfTest] = useState<State<SelfTestReport>>({ status: 'pending' });

  useEffect(() => {
    let cancelled = false;
    const worker = engineWorker();
    (async () => {
      try {
        const p = await worker.probeGpu();
        if (cancelled) return;
        setProbe({ status: 'done', value: p });
        const report = await worker.selfTest(p.ok ? 'webgpu' : 'cpu');
        if (!cancelled) setSelfTest({ status: 'done', value: report });
      } catch (err) {
        if (!cancelled) setSelfTest({ status: 'failed', error: String(err) });
      }
    })();
    return () => {
      cancelled = true;
    };
  }, []);

  return (
    <section className="card" aria-labelledby="device-title" data-testid="device-panel">
      <h2 id="device-title">Your device</h2>
      <GpuSummary probe={probe} />
      <SelfTestSummary state={selfTest} />
    </section>
  );
}

function GpuSummary({ probe }: { probe: State<GpuProbe> }) {
  if (probe.status === 'pending') return <p className="muted">Looking for a WebGPU adapter in the worker…</p>;
  if (probe.status === 'failed' || !probe.value.ok) {
    const error = probe.status === 'failed' ? probe.error : (probe.value as { error: string }).error;
    return (
      <p className="warn" data-testid="gpu-missing">
        No WebGPU in this tab ({error}). You can still contribute on the CPU path, more slowly.
      </p>
    );
  }
  const r = probe.value.report;
  return (
    <div data-testid="gpu-report">
      <dl className="facts">
        <dt>Adapter</dt>
        <dd data-testid="gpu-adapter">
          {[r.vendor, r.architecture, r.description || r.device].filter(Boolean).join(' · ') ||
            'unnamed adapter'}
          {r.isSoftware && <span className="badge">software</span>}
        </dd>
        <dt>Packed int8 dot product</dt>
        <dd data-testid="gpu-packed-dot">
          {r.wgslLanguageFeatures.includes('packed_4x8_integer_dot_product')
            ? 'yes (dot4I8Packed)'
            : 'no (plain i32 path)'}
        </dd>
        <dt>Max storage buffer</dt>
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

function SelfTestSummary({ state }: { state: State<SelfTestReport> }) {
  if (state.status === 'pending') {
    return (
      <p className="muted" role="status">
        Running the conformance self-test…
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
  const t = state.value;
  return (
    <div data-testid="selftest" data-passed={String(t.passed)}>
      <p className={t.passed ? 'ok' : 'warn'} role="status" data-testid="selftest-verdict">
        {t.passed
          ? `Self-test passed on ${t.backend} in ${Math.round(t.ms)} ms: results are bit-identical to the reference.`
          : `Self-test failed on ${t.backend}: this device will not vote.${t.error ? ` ${t.error}` : ''}`}
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

function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}
