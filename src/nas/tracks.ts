/**
 * Search tracks: a dataset from the catalog with its validation split, the default training budget
 * and the parameter budget of the search space. Browser-safe (the coordinator and the web app use it).
 */
import { DATASETS } from '../data/catalog.ts';
import { defineSpace, type SearchSpace, type TrackInfo } from './space.ts';

export interface Track extends TrackInfo {
  /** Training steps of one full-budget evaluation. */
  steps: number;
  /** Parameter budget of the search space. */
  maxParams: number;
  description: string;
}

export const TRACKS = {
  /** The leaderboard track: 10,000 MNIST digits, 2,000 held out; 300 steps ≈ 2.4 epochs at batch 64. */
  mnist: {
    name: 'mnist',
    sha256: DATASETS.mnist.sha256,
    inputs: 784,
    classes: 10,
    validation: 2000,
    splitSeed: 1,
    steps: 300,
    maxParams: 250_000,
    description: 'MNIST digits (10,000; 2,000 validation), 300 steps',
  },
  /**
   * The fast track: the generated "blobs" set (512 × 64 features, 4 classes), 256 held out. It is
   * easy: at 9 steps a search of 100 finds 100% validation accuracy, so 3 steps keep the best models
   * below the ceiling (about 85–90%) and strategies can be told apart.
   */
  blobs: {
    name: 'blobs',
    sha256: DATASETS.blobs.sha256,
    inputs: 64,
    classes: 4,
    validation: 256,
    splitSeed: 1,
    steps: 3,
    maxParams: 100_000,
    description: 'generated blobs (512 × 64, 4 classes; 256 validation), 3 steps',
  },
} as const satisfies Record<string, Track>;

export type TrackName = keyof typeof TRACKS;
export const TRACK_NAMES = Object.keys(TRACKS) as TrackName[];
export const FAST_TRACK: TrackName = 'blobs';

export function trackByName(name: string): Track {
  if (!Object.hasOwn(TRACKS, name))
    throw new Error(`unknown track '${name}' (known: ${TRACK_NAMES.join(', ')})`);
  return TRACKS[name as TrackName];
}

export function spaceOf(track: Track, maxParams = track.maxParams): SearchSpace {
  return defineSpace(track.inputs, track.classes, maxParams);
}
