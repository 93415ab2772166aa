/**
 * Contribute: one wallet signature (the SessionGrant) starts a session; the engine Worker trains
 * leased tasks; the session key signs each vote; every task is followed to its settlement.
 */
import { useState } from 'react';
import type { Address } from 'viem';
import { useConnection, useSignTypedData } from 'wagmi';
import { engineWorker } from '../../worker/engine-client.ts';
import { LineChart } from '../components/Charts.tsx';
import { TxHash } from '../components/TxHash.tsx';
import { RequireWallet } from '../components/Wallet.tsx';
import { useApp, useInfo } from '../lib/context.ts';
import {
  contributor,
  getDutyCycle,
  setContributor,
  setDutyCycle,
  useContributor,
} from '../lib/contribute-store.ts';
import { Contributor, type ContributorSnapshot, type TaskRow } from '../lib/contributor.ts';
import { useDeviceCheck, votingBackend } from '../lib/device.ts';
import { percent, shortHex } from '../lib/format.ts';
import { cambrianDomain, newSessionGrant, sessionGrantTypedData } from '../lib/session.ts';
import { workerTrainer } from '../lib/worker-trainer.ts';

export function ContributePage() {
  return (
    <section className="card" aria-labelledby="contribute-title">
      <h2 id="contribute-title">Contribute</h2>
      <RequireWallet purpose="contribute and earn rewards">
        <ContributeControls />
      </RequireWallet>
      <SessionView />
    </section>
  );
}

function ContributeControls() {
  const { api } = useApp();
  const info = useInfo();
  const connection = useConnection();
  const check = useDeviceCheck();
  const backend = votingBackend(check);
  const signTypedData = useSignTypedData();
  const { snapshot, dutyCycle } = useContributor();
  const [error, setError] = useState<string>();
  const running = snapshot !== undefined && snapshot.status !== 'idle';

  async function start() {
    setError(undefined);
    const existing = contributor();
    if (existing && existing.state.status === 'idle') {
      existing.start();
      return;
    }
    if (!backend || !connection.address) return;
    try {
      const domain = cambrianDomain(info.chainId, info.settlement as Address);
      const signer = engineWorker();
      const grant = await newSessionGrant(signer, connection.address);
      const grantSig = await signTypedData.mutateAsync(sessionGrantTypedData(domain, grant));
      const next = new Contributor({
        api,
        info,
        session: { grant, grantSig, domain },
        signer,
        trainer: workerTrainer(),
        backend,
        dutyCycle: getDutyCycle,
      });
      setContributor(next);
      next.start();
    } catch (err) {
      setError(err instanceof Error ? err.message.split('\n')[0] : String(err));
    }
  }

  return (
    <div className="controls">
      {!backend && (
        <p className="muted" role="status">
          {check.selfTest.status === 'pending'
            ? 'Waiting for the self-test before this device may vote…'
            : 'This device has not passed a self-test yet: see “Your device” above.'}
        </p>
      )}
      <div className="row">
        {running ? (
          <button
            type="button"
            className="danger"
            onClick={() => void contributor()?.stop()}
            data-testid="stop"
          >
            Stop
          </button>
        ) : (
          <button
            type="button"
            onClick={() => void start()}
            disabled={!backend || signTypedData.isPending}
            data-testid="start"
          >
            {signTypedData.isPending ? 'Sign the session grant in your wallet…' : 'Start contributing'}
          </button>
        )}
        <label className="slider">
          <span>
            Duty cycle <output htmlFor="duty">{Math.round(dutyCycle * 100)}%</output>
          </span>
          <input
            id="duty"
            type="range"
            min={10}
            max={100}
            step={10}
            value={Math.round(dutyCycle * 100)}
            onChange={(e) => setDutyCycle(Number(e.target.value) / 100)}
            aria-describedby="duty-help"
          />
        </label>
      </div>
      <p id="duty-help" className="muted small">
        {backend ? `Votes are computed on ${backend === 'webgpu' ? 'the GPU (WebGPU)' : 'the CPU'}. ` : ''}
        The duty cycle is the share of time spent computing; the rest the tab rests between tasks. One
        signature authorises a session key that lives only in this tab and signs every result.
      </p>
      {error && (
        <p className="warn" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function SessionView() {
  const { snapshot } = useContributor();
  if (!snapshot) return null;
  const current = snapshot.tasks.find((t) => t.phase === 'computing');
  return (
    <div className="session" data-testid="session">
      <StatusLine snapshot={snapshot} />
      {current && <CurrentTask task={current} />}
      <TaskTable tasks={snapshot.tasks} />
    </div>
  );
}

const STATUS_TEXT: Record<ContributorSnapshot['status'], string> = {
  idle: 'Stopped',
  connecting: 'Connecting',
  waiting: 'Waiting for work',
  computing: 'Computing',
  resting: 'Resting',
  reconnecting: 'Reconnecting',
  stopping: 'Stopping',
};

function StatusLine({ snapshot }: { snapshot: ContributorSnapshot }) {
  return (
    <p
      className="status-line"
      role="status"
      aria-live="polite"
      data-testid="loop-status"
      data-status={snapshot.status}
    >
      <span className={`pill pill-${snapshot.status}`}>{STATUS_TEXT[snapshot.status]}</span>
      <span className="muted">on {snapshot.backend}</span>
      {snapshot.deviceLosses > 0 && (
        <span className="warn"> · {snapshot.deviceLosses} device loss(es) recovered</span>
      )}
      {snapshot.message && <span className="muted"> · {snapshot.message}</span>}
    </p>
  );
}

function CurrentTask({ task }: { task: TaskRow }) {
  const fraction = task.steps > 0 ? task.step / task.steps : 0;
  return (
    <div className="current" data-testid="current-task">
      <h3>
        Task <code>{shortHex(task.taskId)}</code>
      </h3>
      <div
        className="progress"
        role="progressbar"
        aria-label="Training progress"
        aria-valuemin={0}
        aria-valuemax={task.steps}
        aria-valuenow={task.step}
      >
        <div className="progress-fill" style={{ width: percent(fraction) }} />
      </div>
      <p className="muted small">
        Step {task.step} of {task.steps}
        {task.losses.length > 0 && ` · loss ${task.losses[task.losses.length - 1].toFixed(4)}`}
      </p>
      <LineChart values={task.losses} label="Training loss" testId="loss-chart" />
    </div>
  );
}

const PHASES = ['computing', 'submitted', 'agreed', 'settled'] as const;

function TaskTable({ tasks }: { tasks: TaskRow[] }) {
  if (tasks.length === 0) return null;
  return (
    <div className="table-wrap">
      <table className="table" data-testid="task-table">
        <caption>This session's tasks</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">State</th>
            <th scope="col">Accuracy</th>
            <th scope="col">Settlement</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.leaseId} data-testid="task-row" data-phase={t.phase}>
              <td>
                <code title={t.taskId}>{shortHex(t.taskId)}</code>
              </td>
              <td>
                <Phases phase={t.phase} error={t.error} />
              </td>
              <td>{t.accuracy === undefined ? '—' : percent(t.accuracy)}</td>
              <td>{t.txHash ? <TxHash hash={t.txHash} /> : <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Phases({ phase, error }: { phase: TaskRow['phase']; error?: string }) {
  if (phase === 'failed' && error === 'stopped') return <span className="pill">stopped</span>;
  if (phase === 'failed') {
    return (
      <span className="pill pill-failed" title={error}>
        failed{error ? `: ${error.slice(0, 60)}` : ''}
      </span>
    );
  }
  const reached = PHASES.indexOf(phase);
  return (
    <ol className="phases" aria-label={`State: ${phase}`}>
      {PHASES.map((p, i) => (
        <li
          key={p}
          className={i < reached ? 'done' : i === reached ? 'now' : 'todo'}
          aria-current={i === reached ? 'step' : undefined}
        >
          {p}
        </li>
      ))}
    </ol>
  );
}
