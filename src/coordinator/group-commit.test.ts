import { expect, it, vi } from 'vitest';
import { Refusal } from './errors.ts';
import { GroupCommit } from './group-commit.ts';

it('writes requests that arrive together in one batch, and refuses or fails per item or per batch', async () => {
  const batches: number[][] = [];
  const gc = new GroupCommit<number, string>(async (batch) => {
    batches.push(batch);
    if (batch.includes(13)) throw new Error('database down');
    return batch.map((n) => (n % 2 ? new Refusal(409, `odd ${n}`) : `ok ${n}`));
  }, 0);
  const first = await Promise.allSettled([gc.push(2), gc.push(3), gc.push(4)]);
  expect(batches).toEqual([[2, 3, 4]]);
  expect(first.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
    'ok 2',
    'odd 3',
    'ok 4',
  ]);
  const failed = await Promise.allSettled([gc.push(12), gc.push(13)]);
  expect(failed.every((r) => r.status === 'rejected' && /database down/.test(String(r.reason)))).toBe(true);
  await expect(gc.push(6)).resolves.toBe('ok 6'); // and it goes on after a failed batch
});

it('starts batches at most once per window, so requests spread over it share one', async () => {
  const batches: number[][] = [];
  const gc = new GroupCommit<number, number>(async (batch) => {
    batches.push(batch);
    return batch;
  }, 40);
  // A fake clock: on a loaded machine a real 10 ms sleep can outlast the window.
  vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'performance'] });
  try {
    const first = gc.push(1); // the first batch starts at once
    await vi.advanceTimersByTimeAsync(0);
    await first;
    const later = [gc.push(2)];
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([[1]]);
    later.push(gc.push(3));
    await vi.advanceTimersByTimeAsync(40);
    await Promise.all(later);
    expect(batches).toEqual([[1], [2, 3]]);
  } finally {
    vi.useRealTimers();
  }
});

it('caps a batch and writes the rest in the next one', async () => {
  const sizes: number[] = [];
  const gc = new GroupCommit<number, number>(
    async (batch) => {
      sizes.push(batch.length);
      return batch;
    },
    0,
    4,
  );
  await Promise.all(Array.from({ length: 10 }, (_, i) => gc.push(i)));
  expect(sizes).toEqual([4, 4, 2]);
});
