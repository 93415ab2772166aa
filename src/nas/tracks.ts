/**
 * Search tracks: a dataset from the catalog with its validation split, the default training budget
 * and the parameter budget of the search space. Browser-safe (the coordinator and the web app use it).
 */
import { DATASETS } from '../data/catalog.ts';
import { DEFAULT_CNN_MAX_MACS, defineCnnSpace, type ImageShape } from './cnn-space.ts';
import { defineSpace, type TrackInfo } from './space.ts';
import type { AnySpace } from './spaces.ts';

export interface Track extends TrackInfo {
  /** The track's own name (several tracks may share a dataset: `name` is the dataset's). */
  id: string;
  /** Which search space: dense MLPs (v1 specs) or conv nets (v2 specs). */
  family: 'mlp' | 'cnn';
  /** The dataset's features read as an image (conv tracks). */
  input?: ImageShape;
  /** Largest forward MACs per example (conv tracks). */
  maxMacs?: number;
  /** Training steps of one full-budget evaluation. */
  steps: number;
  /** Parameter budget of the search space. */
  maxParams: number;
  description: string;
}

export const TRACKS = {
  /** The leaderboard track: 10,000 MNIST digits, 2,000 held out; 300 steps ≈ 2.4 epochs at batch 64. */
  mnist: {
    id: 'mnist',
    family: 'mlp',
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
    id: 'blobs',
    family: 'mlp',
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
  /**
   * The conv track: the same digits and split as mnist, read as 1×28×28 images; the conv macro space
   * (src/nas/cnn-space.ts) under 100,000 parameters and 1.5 M forward MACs per example.
   */
  'mnist-cnn': {
    id: 'mnist-cnn',
    family: 'cnn',
    name: 'mnist',
    sha256: DATASETS.mnist.sha256,
    inputs: 784,
    input: { channels: 1, height: 28, width: 28 },
    classes: 10,
    validation: 2000,
    splitSeed: 1,
    steps: 300,
    maxParams: 100_000,
    maxMacs: DEFAULT_CNN_MAX_MACS,
    description: 'MNIST digits as 1×28×28 images, conv nets (≤ 100k params, ≤ 1.5 M MACs), 300 steps',
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

export function spaceOf(track: Track, maxParams = track.maxParams): AnySpace {
  if (track.family === 'cnn') {
    if (!track.input) throw new Error(`conv track '${track.id}' has no input shape`);
    return defineCnnSpace(track.input, track.classes, maxParams, track.maxMacs ?? DEFAULT_CNN_MAX_MACS);
  }
  return defineSpace(track.inputs, track.classes, maxParams);
}
