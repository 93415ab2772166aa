/**
 * `cambrian bench mainthread`: the page's main thread while a tab contributes. The browser e2e test
 * (e2e/app.spec.ts) records every long task and every long animation frame with its script attribution
 * between the app's `cambrian:task-start` and `cambrian:task-settled` marks and writes them to
 * test-results/main-thread.json; this prints that report, attributing each blocking frame to the app's
 * own scripts, to other scripts (the test's wallet, the browser), or to none (a renderer starved of CPU).
 * It is a measurement, not a test: on a loaded machine the figures say as much about the machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_REPORT = join(ROOT, 'test-results', 'main-thread.json');

export const help = `usage: cambrian bench mainthread [--run [--tasks N]] [--report FILE] [--json]

Prints the main-thread report of the last browser e2e run: long tasks and long animation frames while
the tab contributed, attributed to the app's scripts (Long Animation Frames API).
  --run          build and run e2e/app.spec.ts first (a few minutes; starts the whole stack)
  --tasks N      with --run: keep contributing until N tasks of the tab settled (default 1), for a
                 longer window
  --report FILE  the report to read (default test-results/main-thread.json)
  --json         print the summary as JSON`;

interface FrameScript {
  invoker: string;
  source: string;
  duration: number;
  layout: number;
}

interface MainThreadReport {
  measuredAt: string;
  origin: string;
  windowMs: number;
  longTasks: { start: number; duration: number }[];
  longFrames: { start: number; duration: number; blocking: number; scripts: FrameScript[] }[];
}

export interface MainThreadSummary {
  windowSeconds: number;
  longTasks: number;
  longTasksOver50ms: number;
  maxLongTaskMs: number;
  blockingFrames: { app: number; otherScripts: number; noScript: number };
  /** Longest blocking frame that ran app code, in ms of blocking time (0 if none). */
  maxAppBlockingMs: number;
  /** App scripts in blocking frames, longest first: "invoker source: ms". */
  appScripts: string[];
}

/** Classifies the report's blocking frames by who ran in them. */
export function summarise(report: MainThreadReport): MainThreadSummary {
  const isApp = (s: FrameScript) => s.source.includes(report.origin);
  const appFrames = report.longFrames.filter((f) => f.scripts.some(isApp));
  const noScript = report.longFrames.filter((f) => f.scripts.length === 0);
  const appScripts = appFrames
    .flatMap((f) => f.scripts.filter(isApp))
    .sort((a, b) => b.duration - a.duration)
    .map((s) => `${s.invoker} ${s.source.replace(report.origin, '')}: ${Math.round(s.duration)} ms`);
  return {
    windowSeconds: report.windowMs / 1000,
    longTasks: report.longTasks.length,
    longTasksOver50ms: report.longTasks.filter((t) => t.duration > 50).length,
    maxLongTaskMs: Math.max(0, ...report.longTasks.map((t) => t.duration)),
    blockingFrames: {
      app: appFrames.length,
      otherScripts: report.longFrames.length - appFrames.length - noScript.length,
      noScript: noScript.length,
    },
    maxAppBlockingMs: Math.max(0, ...appFrames.map((f) => f.blocking)),
    appScripts,
  };
}

function runE2e(tasks: number): void {
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync('npx', ['playwright', 'test', 'e2e/app.spec.ts'], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, CAMBRIAN_MAIN_THREAD_TASKS: String(tasks) },
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      run: { type: 'boolean', default: false },
      tasks: { type: 'string', default: '1' },
      report: { type: 'string', default: DEFAULT_REPORT },
      json: { type: 'boolean', default: false },
    },
  });
  const tasks = Number(values.tasks);
  if (!Number.isInteger(tasks) || tasks < 1) {
    console.error(`--tasks must be a positive integer, got ${values.tasks}`);
    return 2;
  }
  if (values.run) runE2e(tasks);
  if (!existsSync(values.report)) {
    console.error(`no report at ${values.report}: run the browser e2e test first (or pass --run)`);
    return 1;
  }
  const report = JSON.parse(readFileSync(values.report, 'utf8')) as MainThreadReport;
  const s = summarise(report);
  if (values.json) {
    console.log(JSON.stringify(s, null, 2));
    return 0;
  }
  console.log(
    `main thread while contributing (${report.measuredAt}, ${s.windowSeconds.toFixed(1)} s window)`,
  );
  console.log(`  long tasks:                     ${s.longTasks} (over 50 ms: ${s.longTasksOver50ms})`);
  console.log(`  longest long task:              ${Math.round(s.maxLongTaskMs)} ms`);
  console.log(`  blocking frames running app JS: ${s.blockingFrames.app}`);
  console.log(`  blocking frames, other scripts: ${s.blockingFrames.otherScripts}`);
  console.log(`  blocking frames, no script:     ${s.blockingFrames.noScript} (renderer short of CPU)`);
  console.log(`  longest app blocking:           ${Math.round(s.maxAppBlockingMs)} ms`);
  for (const line of s.appScripts.slice(0, 10)) console.log(`    ${line}`);
  return 0;
}
