import { WINDOW_SLICES, takeFromWindow, type WindowSlice } from './windowed-counter';

const rule = { limit: 10, windowMs: 60_000 }; // slices of 1 s

describe('takeFromWindow', () => {
  it('adds to the current slice, opens a new one per slice of time, and counts what is in the window', () => {
    let slices: WindowSlice[] = [];
    const take = (now: number, units: number) => {
      const r = takeFromWindow(slices, now, units, rule);
      slices = r.slices;
      return r.take;
    };
    expect(take(10_100, 2)).toEqual({ granted: true, used: 2 });
    expect(take(10_900, 3)).toEqual({ granted: true, used: 5 });
    expect(slices).toEqual([{ start: 10_000, end: 11_000, units: 5 }]);
    expect(take(11_000, 1)).toEqual({ granted: true, used: 6 });
    expect(slices).toHaveLength(2);
    expect(rule.windowMs / WINDOW_SLICES).toBe(1000);
  });

  it('refuses what would exceed the limit, takes nothing, and says when enough has left the window', () => {
    const slices: WindowSlice[] = [
      { start: 0, end: 1000, units: 4 },
      { start: 5000, end: 6000, units: 5 },
    ];
    const refused = takeFromWindow(slices, 30_000, 2, rule);
    // 9 held, 2 asked: 1 must leave, and the first slice (4 units) leaves once its end is a window behind.
    expect(refused.take).toEqual({ granted: false, used: 9, retryAfterMs: 1000 + 60_000 - 30_000 });
    expect(refused.slices).toEqual(slices);
    expect(takeFromWindow(slices, 60_999, 2, rule).take.granted).toBe(false);
    expect(takeFromWindow(slices, 61_000, 2, rule).take).toEqual({ granted: true, used: 7 });
    // Needing more than the first slice frees waits for the second too.
    expect(takeFromWindow(slices, 30_000, 6, rule).take).toMatchObject({ retryAfterMs: 6000 + 60_000 - 30_000 });
  });

  it('refuses a take above the limit itself with a window as retry-after', () => {
    expect(takeFromWindow([], 0, 11, rule).take).toEqual({ granted: false, used: 0, retryAfterMs: 60_000 });
  });

  it('never counts a unit longer than one slice beyond the window', () => {
    const { slices } = takeFromWindow([], 10_999, 10, rule);
    // Taken at 10.999 s; exact sliding would free it at 70.999 s, the slice frees it at 71 s.
    expect(takeFromWindow(slices, 70_999, 1, rule).take.granted).toBe(false);
    expect(takeFromWindow(slices, 71_000, 1, rule).take.granted).toBe(true);
  });
});
