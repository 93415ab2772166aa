import { randomSpec } from '../../engine/random-spec.ts';
import { randomCnnSpec } from '../../nas/random-cnn-spec.ts';
import { trackByName } from '../../nas/tracks.ts';
import { canonicalSpec, taskIdOf } from '../../protocol/spec.ts';
import { type Command, intOption, parseOptions } from '../command.ts';

const help = `usage: cambrian spec --random [--track mnist|mnist-cnn] [--seed S] [--small] [--canonical]

Prints a random valid task spec (JSON, see docs/SPEC.md) to stdout and its taskId to stderr.
The same seed always gives the same spec.

  --random     draw a random spec (the only mode so far)
  --track T    mnist (default): a v1 MLP spec; mnist-cnn: a v2 conv spec from the conv search space
  --seed S     u32 seed (default 0)
  --small      the generated blobs dataset, a tiny net and few steps (trains in well under a second);
               with --track mnist-cnn the blobs features are read as 1×8×8 images
  --canonical  print the RFC 8785 canonical form (the bytes taskId hashes) instead of pretty JSON`;

export const command: Command = {
  name: 'spec',
  summary: 'print a random valid task spec',
  help,
  async run(argv) {
    const opts = parseOptions(argv, {
      random: { type: 'boolean', default: false },
      seed: { type: 'string' },
      small: { type: 'boolean', default: false },
      track: { type: 'string', default: 'mnist' },
      canonical: { type: 'boolean', default: false },
    });
    if (!opts.random) throw new Error('--random is required (see --help)');
    const seed = intOption(opts.seed, '--seed', 0);
    if (seed > 0xffffffff) throw new Error('--seed must be a u32');
    const family = trackByName(opts.track).family;
    const spec =
      family === 'cnn' ? randomCnnSpec(seed, { small: opts.small }) : randomSpec(seed, { small: opts.small });
    console.log(opts.canonical ? canonicalSpec(spec) : JSON.stringify(spec, null, 2));
    console.error(`taskId ${taskIdOf(spec)}`);
    return 0;
  },
};
