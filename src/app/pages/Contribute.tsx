/**
 * Contribute, the first screen: what Cambrian does, what this tab earns, Start and how hard to work;
 * then this session's tasks. One wallet signature (the SessionGrant) starts a session; the engine Worker
 * trains leased tasks; the session key signs each vote; every task is followed to its settlement.
 */
import { memo, useEffect, useState } from 'react';
import type { Address } from 'viem';
import { useConnection, useSignTypedData } from 'wagmi';
import { engineWorker } from '../../worker/engine-client.ts';
import { BatteryPause } from '../components/BatteryPause.tsx';
import { LineChart } from '../components/Charts.tsx';
import { TxHash } from '../components/TxHash.tsx';
import { RequireWallet } from '../components/Wallet.tsx';
import { useApp, useInfo } from '../lib/context.ts';
import {
  contributor,
  getDutyCycle,
  setContributor,
  setDutyCycle,
  useContributorState,
  useDutyCycle,
} from '../lib/contribute-store.ts';
import { Contributor, type ContributorSnapshot, LEASE_EXPIRED, type TaskRow } from '../lib/contributor.ts';
import { useDeviceCheck, votingBackend } from '../lib/device.ts';
import { type PayoutTerms, usePayoutTerms, useWalletHistory } from '../lib/earnings.ts';
import { formatEth, percent, plural, shortHex } from '../lib/format.ts';
import { total } from '../lib/payout.ts';
import { cambrianDomain, newSessionGrant, sessionGrantTypedData } from '../lib/session.ts';
import { workerTrainer } from '../lib/worker-trainer.ts';

export function ContributePage() {
  return (
    <section className="card hero" aria-labelledby="contribute-title">
      <h1 id="contribute-title">Lend this tab to open AI research, and get paid for it</h1>
      <p className="lede">
        Cambrian trains small neural networks in your browser to search for better network designs; other
        volunteers repeat each task, and a smart contract pays everyone whose results agree.
      </p>
      <Earnings />
      <RequireWallet purpose="start contributing and earn">
        <ContributeControls />
      </RequireWallet>
      <Onboarding />
      <SessionView />
    </section>
  );
}

/** What one task pays (the contract's rule, from the chain) and what this session has earned. */
function Earnings() {
  const terms = usePayoutTerms();
  return (
    <div className="stats earnings" data-testid="earnings">
      <div className="stat">
        <div className="stat-label">Each task pays you</div>
        <div
          className="stat-value"
          data-testid="per-task"
          data-value={terms?.perTask.toString()}
          title={terms ? payoutRule(terms) : undefined}
        >
          {terms ? `${formatEth(terms.perTask)} ETH` : '…'}
        </div>
        {terms && <div className="stat-note">{payoutRule(terms)}</div>}
      </div>
      <SessionEarnings />
    </div>
  );
}

function payoutRule(terms: PayoutTerms): string {
  return `${formatEth(terms.rewardPerTask)} ETH per task, shared by the ${plural(terms.quorum, 'volunteer')} whose results agree`;
}

/** The session's settled tasks, priced by the TaskSettled events that credited this wallet. */
function SessionEarnings() {
  const { address } = useConnection();
  const tasks = useContributorState((s) => s?.tasks);
  // Reading the events costs main-thread time, so read them when a session task settles, not on a timer.
  const history = useWalletHistory(address as Address | undefined, false);
  const settledCount = (tasks ?? []).filter((t) => t.phase === 'settled').length;
  const { refetch } = history;
  useEffect(() => {
    if (settledCount > 0) void refetch();
  }, [settledCount, refetch]);
  const mine = new Set((tasks ?? []).map((t) => t.taskId.toLowerCase()));
  const paid = (history.data?.settlements ?? []).filter((s) => s.won && mine.has(s.taskId.toLowerCase()));
  return (
    <div className="stat">
      <div className="stat-label">This session</div>
      <div className="stat-value" data-testid="session-earned" data-value={total(paid).toString()}>
        {formatEth(total(paid))} ETH
      </div>
      <div className="stat-note">
        {plural(paid.length, 'settled task')}
        {tasks && tasks.length > paid.length ? `, ${tasks.length - paid.length} on the way` : ''}
      </div>
    </div>
  );
}

function ContributeControls() {
  const { api } = useApp();
  const info = useInfo();
  const connection = useConnection();
  const check = useDeviceCheck();
  const backend = votingBackend(check);
  const signTypedData = useSignTypedData();
  const status = useContributorState((s) => s?.status);
  const dutyCycle = useDutyCycle();
  const [error, setError] = useState<string>();
  const running = status !== undefined && status !== 'idle';

  async function start() {
    setError(undefined);
    const existing = contributor();
    if (existing) {
      // The display lags the loop by up to a frame; never start a second session beside a running one.
      if (existing.state.status === 'idle') existing.start();
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

  const share = Math.round(dutyCycle * 100);
  return (
    <div className="controls">
      {!backend && (
        <p className="muted" role="status">
          {check.selfTest.status === 'pending'
            ? 'Checking that this device computes exactly like everyone else (a few seconds)…'
            : 'This device has not passed its check yet: see “Your device” below.'}
        </p>
      )}
      <div className="row">
        {running ? (
          <button
            type="button"
            className="danger big"
            onClick={() => void contributor()?.stop()}
            data-testid="stop"
          >
            Stop
          </button>
        ) : (
          <button
            type="button"
            className="big"
            onClick={() => void start()}
            disabled={!backend || signTypedData.isPending}
            data-testid="start"
          >
            {signTypedData.isPending ? 'Sign in your wallet…' : 'Start contributing'}
          </button>
        )}
        <label className="slider">
          <span>
            Work <output htmlFor="duty">{share}%</output> of the time
          </span>
          <input
            id="duty"
            type="range"
            min={10}
            max={100}
            step={10}
            value={share}
            onChange={(e) => setDutyCycle(Number(e.target.value) / 100)}
            aria-describedby="duty-help"
            aria-valuetext={`${share}% of the time`}
          />
        </label>
      </div>
      <p id="duty-help" className="muted small">
        {share === 100
          ? 'Computes without pause: fastest earnings, most power.'
          : `Computes ${share}% of the time and rests between tasks; lower means cooler and quieter.`}
        {backend ? ` Runs on ${backend === 'webgpu' ? 'your graphics chip' : 'the processor'}.` : ''}
      </p>
      <BatteryPause />
      {error && (
        <p className="warn" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function Onboarding() {
  return (
    <details className="onboarding" open>
      <summary>What happens when you start</summary>
      <ul>
        <li>
          Your wallet signs once (no transaction, no fee) to let this tab sign its results with a key that
          never leaves the tab.
        </li>
        <li>
          The tab downloads a small training task, trains it, and sends the result; then the next one. Payment
          comes when another volunteer's result matches yours and the contract settles the task; claim it on
          the Rewards page.
        </li>
        <li>
          <strong>Keep this tab open.</strong> It can sit in the background; closing it or letting the
          computer sleep stops the work, and an unfinished task simply goes to someone else.
        </li>
        <li>
          It costs power: the graphics chip or processor works for the share of time you choose, which warms
          the device and drains a laptop's battery faster.
        </li>
      </ul>
    </details>
  );
}

function SessionView() {
  const status = useContributorState((s) => s?.status);
  const tasks = useContributorState((s) => s?.tasks);
  if (!status || !tasks) return null;
  const current = tasks.find((t) => t.phase === 'computing');
  return (
    <div className="session" data-testid="session">
      <StatusLine />
      {current && <CurrentTask task={current} />}
      <TaskList tasks={tasks} />
    </div>
  );
}

const STATUS_TEXT: Record<ContributorSnapshot['status'], string> = {
  idle: 'Stopped',
  connecting: 'Connecting',
  waiting: 'Waiting for work',
  computing: 'Computing',
  verifying: 'Checking a result',
  resting: 'Resting',
  reconnecting: 'Reconnecting',
  stopping: 'Stopping',
};

function StatusLine() {
  const status = useContributorState((s) => s?.status ?? 'idle');
  const backend = useContributorState((s) => s?.backend);
  const deviceLosses = useContributorState((s) => s?.deviceLosses ?? 0);
  const message = useContributorState((s) => s?.message);
  const audits = useContributorState((s) => s?.auditsAnswered ?? 0);
  return (
    <p
      className="status-line"
      role="status"
      aria-live="polite"
      data-testid="loop-status"
      data-status={status}
    >
      <span className={`pill pill-${status}`}>{STATUS_TEXT[status]}</span>
      {status !== 'idle' && (
        <span className="muted">on {backend === 'webgpu' ? 'the graphics chip' : 'the processor'}</span>
      )}
      {deviceLosses > 0 && (
        <span className="warn"> · graphics chip reset {plural(deviceLosses, 'time')}, recovered</span>
      )}
      {audits > 0 && (
        <span className="muted" data-testid="audits-answered">
          {' '}
          · checked {plural(audits, 'result')} of other volunteers
        </span>
      )}
      {message && <span className="muted"> · {message}</span>}
    </p>
  );
}

const CurrentTask = memo(function CurrentTask({ task }: { task: TaskRow }) {
  const fraction = task.steps > 0 ? task.step / task.steps : 0;
  return (
    <div className="current" data-testid="current-task">
      <h2 className="h3">Training task {shortHex(task.taskId, 4)}</h2>
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
        {task.losses.length > 0 &&
          ` · error ${task.losses[task.losses.length - 1].toFixed(3)} (lower is better)`}
      </p>
      <LineChart
        values={task.losses}
        label="Training error (loss) by step"
        testId="loss-chart"
        xLabel="progress"
        yLabel="loss"
      />
    </div>
  );
});

const PHASES = ['computing', 'submitted', 'agreed', 'settled'] as const;

/** What each state means, in plain words. */
const PHASE_TEXT: Record<TaskRow['phase'], string> = {
  computing: 'Training in this tab.',
  submitted: 'Result sent; waiting for another volunteer’s result to compare.',
  agreed: 'Results match; waiting for the contract to settle it.',
  settled: 'Settled on chain: your share is credited.',
  failed: 'Failed.',
};

function TaskList({ tasks }: { tasks: TaskRow[] }) {
  if (tasks.length === 0) return null;
  return (
    <section aria-labelledby="tasks-title">
      <h2 id="tasks-title" className="h3">
        This session's tasks
      </h2>
      <ol className="task-list" data-testid="task-table">
        {tasks.map((t) => (
          <TaskCard key={t.leaseId} task={t} />
        ))}
      </ol>
    </section>
  );
}

/** One task as a card; memoised, so progress on the current task does not re-render the others. */
const TaskCard = memo(function TaskCard({ task: t }: { task: TaskRow }) {
  return (
    <li className="task-card" data-testid="task-row" data-phase={t.phase}>
      <div className="task-head">
        <span>
          Task <code title={t.taskId}>{shortHex(t.taskId, 4)}</code>
        </span>
        <span className="muted">{t.accuracy === undefined ? '' : `${percent(t.accuracy)} accurate`}</span>
      </div>
      <Phases phase={t.phase} error={t.error} />
      <p className="small muted task-note">
        {t.phase === 'failed' ? failureText(t.error) : PHASE_TEXT[t.phase]}
        {t.txHash && (
          <>
            {' '}
            Transaction <TxHash hash={t.txHash} />
          </>
        )}
      </p>
    </li>
  );
});

function failureText(error?: string): string {
  if (error === 'stopped') return 'Stopped before it finished; the task went back to the coordinator.';
  if (error === LEASE_EXPIRED)
    return 'Took too long (did the computer sleep?): the task went to another volunteer. Nothing is owed or lost.';
  return `Failed${error ? `: ${error.slice(0, 120)}` : ''}. The task goes to another volunteer.`;
}

function Phases({ phase, error }: { phase: TaskRow['phase']; error?: string }) {
  if (phase === 'failed') {
    const label = error === 'stopped' ? 'stopped' : error === LEASE_EXPIRED ? 'expired' : 'failed';
    return <span className={`pill ${label === 'failed' ? 'pill-failed' : ''}`}>{label}</span>;
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
          {i < reached && <span aria-hidden="true">✓ </span>}
          {p}
        </li>
      ))}
    </ol>
  );
}
