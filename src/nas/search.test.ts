import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTaskResult } from '../protocol/result.ts';
import { taskIdOf } from '../protocol/spec.ts';
import { TrainPool } from './pool.ts';
import { HashRng } from './rng.ts';
import { formatLeaderboard, progressLine, runSearch, type SearchProgress } from './search.ts';
import { defineSpace, sampleArchitecture, toTaskSpec } from './space.ts';
import { createStrategy } from './strategy.ts';
import { spaceOf, TRACKS } from './tracks.ts';

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ['bin/cambrian.mjs', ...args], { cwd: process.cwd() });

describe('offline search on worker threads', () => {
  const pool = new TrainPool(2);
  afterAll(() => pool.close());

  it('trains every proposal with the engine and ranks the results', async () => {
    const track = { ...TRACKS.blobs, steps: 3 };
    const strategy = createStrategy({ kind: 'random', seed: 4, budget: 6, steps: 3 }, spaceOf(track));
    const progress: SearchProgress[] = [];
    const report = await runSearch({
      strategy,
      track,
      trainingSeed: 1,
      budget: 6,
      parallel: 2,
      evaluate: async (spec) => {
        const trained = await pool.train(spec);
        parseTaskResult(trained.result); // a real, self-consistent engine result
        expect(trained.result.taskId).toBe(taskIdOf(spec));
        return trained;
      },
      onProgress: (p) => progress.push(p),
    });
    expect(report.trials).toBe(6);
    expect(report.failed).toBe(0);
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(report.leaderboard).toHaveLength(6);
    expect(report.trainingSeconds).toBeGreaterThan(0);
    const accs = report.leaderboard.map((e) => e.accuracy);
    expect([...accs].sort((a, b) => b - a)).toEqual(accs);
    for (const e of report.leaderboard) expect(e.taskId).toBe(taskIdOf(e.spec));
    for (const p of report.pareto) expect(report.leaderboard.some((e) => e.trialId === p.trialId)).toBe(true);
    expect(report.pareto[report.pareto.length - 1].accuracy).toBe(accs[0]);
    expect(formatLeaderboard(report.leaderboard)).toContain('val acc');
    expect(progressLine({ done: 3, budget: 6, failed: 0 }, 10)).toBe('[#####-----] 3/6');
  });

  it('reports a failed training and keeps going', async () => {
    const track = { ...TRACKS.blobs, steps: 2 };
    const strategy = createStrategy({ kind: 'random', seed: 1, budget: 3, steps: 2 }, spaceOf(track));
    const report = await runSearch({
      strategy,
      track,
      trainingSeed: 1,
      budget: 3,
      parallel: 3,
      // A spec naming a dataset hash this build does not have: the engine's loader refuses it.
      evaluate: (spec, p) =>
        pool.train(
          p.trialId === 1 ? { ...spec, dataset: { ...spec.dataset, sha256: `0x${'0'.repeat(64)}` } } : spec,
        ),
    });
    expect(report.failed).toBe(1);
    expect(strategy.trials()[1].status).toBe('failed');
    expect(report.leaderboard).toHaveLength(2);
  });
});

describe('training pool', () => {
  it('fails only the task of a thread that dies, and replaces the thread', async () => {
    const pool = new TrainPool(1);
    try {
      const spec = toTaskSpec(
        TRACKS.blobs,
        sampleArchitecture(defineSpace(TRACKS.blobs.inputs, TRACKS.blobs.classes), new HashRng(1)),
        {
          steps: 2,
          seed: 1,
        },
      );
      const running = pool.train(spec);
      const threads = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots;
      await threads[0].worker.terminate();
      await expect(running).rejects.toThrow(/died/);
      const again = await pool.train(spec);
      expect(again.result.taskId).toBe(taskIdOf(spec));
    } finally {
      await pool.close();
    }
  });
});

describe('cambrian search / export', () => {
  it('search --json is reproducible for a seed with one worker', async () => {
    const args = [
      'search',
      '--track',
      'blobs',
      '--budget',
      '4',
      '--steps',
      '3',
      '--parallel',
      '1',
      '--seed',
      '5',
      '--json',
    ];
    const [a, b] = await Promise.all([cli(...args), cli(...args)]);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    expect(ra.leaderboard).toHaveLength(4);
    expect(ra.leaderboard.map((e: { taskId: string }) => e.taskId)).toEqual(
      rb.leaderboard.map((e: { taskId: string }) => e.taskId),
    );
    expect(ra.pareto.length).toBeGreaterThan(0);
    expect(a.stderr).toContain('4/4');
  });

  it('export trains a spec and writes an ONNX model that scores like the engine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cambrian-export-'));
    const specFile = join(dir, 'spec.json');
    const out = join(dir, 'model.onnx');
    const report = JSON.parse(
      (await cli('search', '--track', 'blobs', '--budget', '1', '--steps', '4', '--json')).stdout,
    );
    await writeFile(specFile, JSON.stringify(report.leaderboard[0].spec));
    const { stdout } = await cli('export', '--spec', specFile, '--out', out, '--json');
    const exported = JSON.parse(stdout);
    expect(exported.result.taskId).toBe(report.leaderboard[0].taskId);
    expect(exported.result.valCorrect).toBe(report.leaderboard[0].valCorrect);
    expect((await readFile(out)).length).toBe(exported.bytes);
    expect(Math.abs(exported.onnxAccuracy.correct - exported.result.valCorrect)).toBeLessThanOrEqual(3);
  });
});
