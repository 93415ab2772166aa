/**
 * Random conv (v2) task specs for tests and demos: `cambrian spec --random --track mnist-cnn`.
 * Deterministic in the seed (the search's hash RNG). The architecture comes from the conv search
 * space, so every spec is one the mnist-cnn search could propose.
 */
import { DATASETS } from '../data/catalog.ts';
import type { TaskSpecV2 } from '../protocol/spec.ts';
import { defineCnnSpace, sampleCnnArchitecture, toCnnTaskSpec } from './cnn-space.ts';
import { HashRng } from './rng.ts';
import { TRACKS } from './tracks.ts';

export interface RandomCnnSpecOptions {
  /**
   * The generated blobs set read as 1×8×8 images, at most 3,000 parameters and 20,000 MACs, 8–32
   * steps: trains in well under a second on the CPU reference.
   */
  small?: boolean;
}

export function randomCnnSpec(seed: number, options: RandomCnnSpecOptions = {}): TaskSpecV2 {
  const rng = new HashRng(seed);
  if (options.small) {
    const track = {
      name: 'blobs',
      sha256: DATASETS.blobs.sha256,
      input: { channels: 1, height: 8, width: 8 },
      classes: 4,
      validation: 128,
      splitSeed: rng.nextU32(),
    };
    const arch = sampleCnnArchitecture(defineCnnSpace(track.input, track.classes, 3_000, 20_000), rng);
    const steps = 8 + rng.int(25);
    return toCnnTaskSpec(track, arch, { steps, seed: rng.nextU32(), checkpointEvery: 4 + rng.int(8) });
  }
  const track = TRACKS['mnist-cnn'];
  const arch = sampleCnnArchitecture(
    defineCnnSpace(track.input, track.classes, track.maxParams, track.maxMacs),
    rng,
  );
  const steps = 50 + rng.int(251);
  return toCnnTaskSpec(track, arch, { steps, seed: rng.nextU32(), checkpointEvery: 25 * (1 + rng.int(4)) });
}
