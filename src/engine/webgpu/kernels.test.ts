import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelName, OPS_DIR } from './gen-kernels.ts';
import * as generated from './kernels.generated.ts';

describe('kernels.generated.ts', () => {
  it('holds exactly the current src/engine/ops/*.wgsl (regenerate: npx tsx src/engine/webgpu/gen-kernels.ts)', () => {
    const files = readdirSync(OPS_DIR).filter((f) => f.endsWith('.wgsl'));
    const expected = Object.fromEntries(
      files.map((f) => [kernelName(f), readFileSync(join(OPS_DIR, f), 'utf8')]),
    );
    expect({ ...generated }).toEqual(expected);
  });
});
