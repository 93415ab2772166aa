import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { parseAnyTaskSpec } from '../../protocol/spec.ts';
import { ArchDiagram } from './ArchDiagram.tsx';

const training = {
  optimizer: 'sgd',
  batch: 8,
  steps: 1,
  seed: 1,
  learningRateQ16: 1,
  momentumQ16: 0,
  weightDecayQ24: 0,
};
const dataset = { name: 'mnist', sha256: `0x${'0'.repeat(64)}` };

const draw = (spec: unknown) =>
  renderToStaticMarkup(createElement(ArchDiagram, { spec: parseAnyTaskSpec(spec) }));

describe('ArchDiagram', () => {
  it('draws a conv model layer by layer with its shapes', () => {
    const svg = draw({
      v: 2,
      dataset,
      split: { seed: 1, validation: 10 },
      model: {
        input: { channels: 1, height: 28, width: 28 },
        classes: 10,
        layers: [
          { op: 'conv', channels: 16, kernel: 3, stride: 1, activation: 'relu' },
          { op: 'conv', channels: 16, kernel: 3, stride: 1, activation: 'gelu', residual: true },
          { op: 'maxpool' },
          { op: 'conv', channels: 32, kernel: 5, stride: 2, activation: 'relu' },
          { op: 'gap' },
          { op: 'dense', units: 64, activation: 'relu' },
        ],
      },
      training,
      checkpointEvery: 1,
    });
    expect(svg).toContain(
      'aria-label="Architecture: 1×28×28 input, then 16×28×28 conv3 relu, then 16×28×28 conv3 gelu with residual, ' +
        'then 16×14×14 maxpool, then 32×7×7 conv5/2 relu, then 32 gap, then 64 relu, then 10 softmax"',
    );
    expect(svg.match(/<rect/g)).toHaveLength(8);
    expect(svg.match(/skip-edge/g)).toHaveLength(1);
  });

  it('still draws an MLP as before', () => {
    const svg = draw({
      v: 1,
      dataset,
      split: { seed: 1, validation: 10 },
      model: { inputs: 784, classes: 10, hidden: [{ units: 128, activation: 'relu', residual: false }] },
      training,
      checkpointEvery: 1,
    });
    expect(svg).toContain('aria-label="Architecture: 784 input, then 128 relu, then 10 softmax"');
  });
});
