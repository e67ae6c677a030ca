/** The byte budget alone: who goes, who waits, in what order, and who is refused. Fake timers, no wall clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createByteBudget, type Release } from '../../src/http/byte-budget.js';

describe('byte budget', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('grants what fits, queues the rest in order, and grants them as bytes come back', async () => {
    const budget = createByteBudget({ bytes: 100, maxWaitMs: 1_000 });
    const first = (await budget.reserve(60)) as Release;
    const order: string[] = [];
    const second = budget.reserve(60).then((r) => (order.push('second'), r));
    const third = budget.reserve(50).then((r) => (order.push('third'), r));
    await Promise.resolve();
    expect(budget.held()).toBe(60);
    expect(budget.waiting()).toBe(2);

    first();
    first(); // twice: no effect
    const secondRelease = (await second) as Release;
    expect(budget.held()).toBe(60);
    expect(order).toEqual(['second']);
    secondRelease();
    expect(await third).toBeTypeOf('function');
    expect(order).toEqual(['second', 'third']);
    expect(budget.held()).toBe(50);
    expect(budget.waiting()).toBe(0);
  });

  it('a small request that fits overtakes waiting big ones; a big one waits its turn', async () => {
    const budget = createByteBudget({ bytes: 160, maxWaitMs: 1_000 });
    await budget.reserve(100);
    const big = budget.reserve(100);
    expect(await budget.reserve(10)).toBeTypeOf('function'); // 10 ≤ 160/16
    const notSmall = budget.reserve(40); // fits, but over 160/16: behind the big one
    await Promise.resolve();
    expect(budget.waiting()).toBe(2);
    vi.advanceTimersByTime(1_000);
    expect(await big).toBeUndefined();
    expect(await notSmall).toBeTypeOf('function');
  });

  it('a single reservation larger than the budget goes when nothing is held', async () => {
    const budget = createByteBudget({ bytes: 100, maxWaitMs: 1_000 });
    expect(await budget.reserve(500)).toBeTypeOf('function');
    expect(budget.held()).toBe(500);
  });

  it('refuses after maxWaitMs and reports every change', async () => {
    const changes: [number, number][] = [];
    const budget = createByteBudget({ bytes: 100, maxWaitMs: 1_000, onChange: (held, waiting) => changes.push([held, waiting]) });
    const release = (await budget.reserve(100)) as Release;
    const refused = budget.reserve(100);
    vi.advanceTimersByTime(999);
    expect(budget.waiting()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await refused).toBeUndefined();
    release();
    expect(changes).toEqual([
      [100, 0],
      [100, 1],
      [100, 0],
      [0, 0],
    ]);
  });
});
