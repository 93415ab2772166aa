/** The search driver takes a track by name: the conv track fills the queue with v2 specs from the conv space. */
import { afterEach, describe, expect, it } from 'vitest';
import { cnnArchitectureOf } from '../nas/cnn-space.ts';
import { isV2, parseAnyTaskSpec } from '../protocol/spec.ts';
import { type Db, openDb } from './db.ts';
import { SearchDriver } from './search.ts';
import { DEFAULT_QUEUE, Store } from './store.ts';

describe('search driver tracks', () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it.each([
    ['blobs', 1],
    ['mnist-cnn', 2],
  ] as const)('%s: queues specs of version %i and resumes from the saved state', async (track, version) => {
    db = await openDb({ url: 'memory://' });
    const store = new Store(db, DEFAULT_QUEUE);
    const config = {
      track,
      strategy: {
        kind: 'evolution' as const,
        seed: 5,
        budget: 6,
        steps: 8,
        populationSize: 2,
        sampleSize: 2,
      },
      queueDepth: 4,
    };
    expect(await new SearchDriver(db, store, config, 'a').tick()).toBe(4);
    const rows = await db.query<{ spec: unknown }>('SELECT spec FROM tasks');
    const specs = rows.map((r) => parseAnyTaskSpec(typeof r.spec === 'string' ? JSON.parse(r.spec) : r.spec));
    expect(specs.map((s) => s.v)).toEqual([version, version, version, version]);
    for (const spec of specs) if (isV2(spec)) expect(() => cnnArchitectureOf(spec)).not.toThrow();
    // Another driver (a restarted coordinator) continues the saved strategy: nothing open is re-proposed.
    const again = new SearchDriver(db, store, config, 'a');
    expect(await again.tick()).toBe(0);
    expect(again.summary()).toMatchObject({ track, trials: 4, budget: 6 });
  });
});
