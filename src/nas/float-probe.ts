/**
 * Float32 accuracy of a conv-space architecture on the mnist-cnn track, for choosing the reference CNN
 * before (and beside) the integer trainer:
 *
 *   npx tsx src/nas/float-probe.ts 'c8k3r.mp c16k3r.mp flat lr=1/16 m=0.875 wd=0 b=64' 375
 *
 * Trains `toCnnTaskSpec(mnist-cnn, parseCnnCode(CODE), { steps, seed: 1 })` with the float32 reference
 * trainer (src/engine/float-reference.ts) and prints validation accuracy, loss and wall time.
 */
import { loadDataset } from '../data/node.ts';
import { trainFloatReference } from '../engine/float-reference.ts';
import { parseCnnCode, toCnnTaskSpec } from './cnn-space.ts';
import { TRACKS } from './tracks.ts';

const [code, stepsText = '375'] = process.argv.slice(2);
if (!code) throw new Error('usage: npx tsx src/nas/float-probe.ts CODE [STEPS]');
const spec = toCnnTaskSpec(TRACKS['mnist-cnn'], parseCnnCode(code), { steps: Number(stepsText), seed: 1 });
const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
const started = performance.now();
const r = trainFloatReference(spec, dataset);
console.log(
  `${code} | ${spec.training.steps} steps | float32 ${r.valCorrect}/${r.valCount} = ${((100 * r.valCorrect) / r.valCount).toFixed(2)}%` +
    ` | val loss ${r.valLoss.toFixed(4)} | ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
