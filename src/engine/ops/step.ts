/**
 * Twin of step.wgsl, the step boundary. Max-abs slots are grouped four per weight layer from slot 0:
 * [x, e, w, wNext]. For each of the first `layers` groups: x and e are zeroed, w takes wNext (the max
 * |W| the SGD kernel just folded in) and wNext is zeroed. Then slots [clearFrom, clearFrom +
 * clearCount) are zeroed, and when `advance` the step counters move on (state[0]: training step,
 * keys the RNG; state[1]: step within the uploaded batch range).
 */

export interface StepParams {
  [key: string]: number | boolean;
  layers: number;
  clearFrom: number;
  clearCount: number;
  advance: boolean;
  /** Length of the maxes buffer (not sent to the kernel). */
  slots: number;
}

export function step(p: StepParams, b: { maxes: Uint32Array; state: Uint32Array }): void {
  const { maxes } = b;
  for (let l = 0; l < p.layers; l++) {
    const base = 4 * l;
    maxes[base] = 0;
    maxes[base + 1] = 0;
    maxes[base + 2] = maxes[base + 3];
    maxes[base + 3] = 0;
  }
  maxes.fill(0, p.clearFrom, p.clearFrom + p.clearCount);
  if (p.advance) {
    b.state[0] += 1;
    b.state[1] += 1;
  }
}
