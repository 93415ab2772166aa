/**
 * The committed module (./kernels-wasm.ts) is what ./assembly/kernels.ts compiles to with the pinned
 * AssemblyScript: recompiling reproduces its bytes exactly (scripts/build-wasm.mjs --check).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('the embedded WASM kernels', () => {
  it('are reproduced by recompiling the AssemblyScript source', () => {
    const out = execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toContain('is current');
  });
});
