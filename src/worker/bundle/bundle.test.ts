/**
 * The standalone worker bundle, built the way `npm run build:worker` builds it, copied away from the
 * repository and run with plain `node`: it must train the device-check fixture to the digests the
 * CPU reference made (scripts/device-check/expected.json), on the CPU and on WebGPU (Dawn).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExpectedResult } from './device-specs.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = join(ROOT, 'scripts', 'device-check');

describe('standalone worker bundle', () => {
  let dir: string;
  let bundle: string;
  let expected: ExpectedResult[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cambrian-bundle-'));
    const built = join(dir, 'built');
    await run(process.execPath, [join(ROOT, 'scripts', 'build-worker.mjs'), '--out', built], { cwd: ROOT });
    // Moved once more, into a folder with no repository around it.
    await cp(built, join(dir, 'moved'), { recursive: true });
    await rm(built, { recursive: true });
    bundle = join(dir, 'moved', 'cambrian.mjs');
    expected = JSON.parse(await readFile(join(FIXTURE, 'expected.json'), 'utf8'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const trainWithBundle = async (file: string, backend: string) => {
    const { stdout } = await run(
      process.execPath,
      [bundle, 'train', '--spec', join(FIXTURE, file), '--backend', backend, '--json'],
      { cwd: dir },
    );
    return JSON.parse(stdout) as ExpectedResult;
  };

  it.each(['cpu', 'webgpu'])(
    'trains the fixture specs to the CPU reference digests on %s',
    async (backend) => {
      for (const want of expected.filter((e) => e.file.includes('small')).slice(0, 3)) {
        const got = await trainWithBundle(want.file, backend);
        expect({ file: want.file, digest: got.digest, weightsHash: got.weightsHash }).toEqual({
          file: want.file,
          digest: want.digest,
          weightsHash: want.weightsHash,
        });
      }
    },
  );

  it('names what it lacks instead of failing obscurely', async () => {
    const unknown = await run(process.execPath, [bundle, 'coordinator'], { cwd: dir }).catch((e) => e);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/'coordinator' is not in the worker bundle/);
    const browser = await run(process.execPath, [bundle, 'bench', 'engine'], { cwd: dir }).catch((e) => e);
    expect(browser.code).toBe(2);
    expect(browser.stderr).toMatch(/add --no-browser/);
  });
});
