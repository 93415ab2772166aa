import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadDataset } from '../../data/node.ts';
import { randomSpec } from '../../engine/random-spec.ts';
import { trainCpu } from '../../engine/train-cpu.ts';
import { parseTaskResult } from '../../protocol/result.ts';
import { parseTaskSpec } from '../../protocol/spec.ts';
import { main } from '../main.ts';

async function capture(argv: string[]): Promise<{ code: number; stdout: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    const code = await main(argv);
    return { code, stdout: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

describe('cambrian spec / train', () => {
  afterEach(() => vi.restoreAllMocks());

  it('spec --random --small prints a valid, seed-determined spec that train --json trains like the engine', async () => {
    const printed = await capture(['spec', '--random', '--seed', '3', '--small']);
    expect(printed.code).toBe(0);
    const spec = parseTaskSpec(JSON.parse(printed.stdout));
    expect(spec).toEqual(randomSpec(3, { small: true }));
    expect(spec.dataset.name).toBe('blobs');

    const dir = await mkdtemp(join(tmpdir(), 'cambrian-cli-'));
    try {
      const file = join(dir, 'spec.json');
      await writeFile(file, printed.stdout);
      const trained = await capture(['train', '--spec', file, '--json']);
      expect(trained.code).toBe(0);
      const result = parseTaskResult(JSON.parse(trained.stdout));
      expect(result).toEqual(await trainCpu(spec, await loadDataset('blobs')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('train rejects a bad backend and a missing spec with exit code 1', async () => {
    expect((await capture(['train', '--spec', 'x.json', '--backend', 'tpu'])).code).toBe(1);
    expect((await capture(['train'])).code).toBe(1);
  });
});
