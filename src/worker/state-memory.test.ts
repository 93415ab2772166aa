import type { Hex } from 'viem';
import { describe, expect, it } from 'vitest';
import type { TrainState } from '../engine/types.ts';
import { StateMemory } from './state-memory.ts';

const task = (i: number): Hex => `0x${i.toString(16).padStart(64, '0')}` as Hex;
const state = (step: number, n: number): TrainState => ({
  step,
  params: new Int32Array(n).fill(step),
  momentum: new Int32Array(n),
});

describe('StateMemory', () => {
  it('keeps the last tasks within the task and byte bounds, oldest evicted first', () => {
    const memory = new StateMemory(2, 3 * 8 * 100); // 2 tasks, 3 states of 100 parameters
    memory.keep(task(1), [state(2, 100)]);
    memory.keep(task(2), [state(2, 100), state(4, 100)]);
    expect(memory.get(task(2), 4)?.params[0]).toBe(4);
    expect(memory.size).toEqual({ tasks: 2, bytes: 3 * 800 });
    memory.keep(task(3), [state(2, 100)]); // over 2 tasks: task 1 goes
    expect(memory.get(task(1), 2)).toBeUndefined();
    expect(memory.get(task(2), 2)).toBeDefined();
    memory.keep(task(4), [state(2, 100), state(4, 100)]); // task 2 goes, task 3 still fits
    expect(memory.get(task(2), 2)).toBeUndefined();
    expect(memory.get(task(3), 2)).toBeDefined();
    expect(memory.size).toEqual({ tasks: 2, bytes: 3 * 800 });
    memory.keep(task(6), [state(2, 100), state(4, 100), state(6, 100)]); // by bytes: both go
    expect(memory.size).toEqual({ tasks: 1, bytes: 3 * 800 });
    memory.keep(task(4), [state(2, 100), state(4, 100)]);
    expect(memory.get(task(4), 4)?.step).toBe(4);
    memory.keep(task(5), [state(2, 100), state(4, 100), state(6, 100), state(8, 100)]); // too big alone
    expect(memory.get(task(5), 2)).toBeUndefined();
    expect(memory.get(task(4), 2)).toBeDefined();
  });
});
