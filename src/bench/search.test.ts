import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { run } from './search.ts';

describe('cambrian bench search', () => {
  it('runs a tiny comparison end to end and writes its JSON report', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'bench-search-')), 'search.json');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const code = await run([
        '--seeds',
        '2',
        '--budget',
        '4',
        '--population',
        '2',
        '--sample',
        '2',
        '--steps',
        '3',
        '--out',
        out,
      ]);
      expect(code).toBe(0);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const report = JSON.parse(await readFile(out, 'utf8'));
    expect(report).toMatchObject({ track: 'blobs', steps: 3, seeds: 2, budget: 4, ashaCap: 16 });
    expect(report.final.random).toHaveLength(2);
    expect(report.final.evolution).toHaveLength(2);
    for (const x of [...report.final.random, ...report.final.evolution]) {
      expect(x).toBeGreaterThan(0);
      expect(x).toBeLessThanOrEqual(1);
    }
    expect(report.asha.cpuSeconds.every((s: number) => s > 0)).toBe(true);
    expect(report.trainings).toBeGreaterThan(4);
  });
});
