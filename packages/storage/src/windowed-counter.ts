import { StorageError } from './errors';

/** At most `limit` units per sliding window of `windowMs`. */
export interface WindowRule {
  readonly limit: number;
  readonly windowMs: number;
}

/** Units taken within one slice of time, `[start, end)` in epoch ms. */
export interface WindowSlice {
  readonly start: number;
  readonly end: number;
  readonly units: number;
}

/** Outcome of a take: `used` is what the window holds afterwards (granted) or now (refused). */
export type WindowedTake =
  | { readonly granted: true; readonly used: number }
  | { readonly granted: false; readonly used: number; readonly retryAfterMs: number };

/**
 * Port: a counter per key over a sliding window, shared by every process that opens the same database — rate
 * limits, quotas and frequency caps that hold across replicas. A take is all or nothing and atomic against
 * concurrent takes from any process: the window never holds more than `limit`.
 *
 * The window is kept as {@link WINDOW_SLICES} slices, and a slice counts until its END has left the window, so a
 * unit may count up to one slice (1/60 of the window) longer than an exact sliding log would keep it: the limit is
 * never exceeded, a take may be refused up to that much early. A key should always be used with the same rule.
 */
export interface WindowedCounterStore {
  /**
   * Adds `units` to `key`'s window if the window then holds at most `rule.limit`; otherwise takes nothing and says
   * when enough will have left the window (`retryAfterMs`; a window's length if `units` exceeds the limit itself).
   * @throws StorageError STORAGE_INVALID_ARGUMENT; STORAGE_CONTENDED when concurrent takes kept winning (MongoDB)
   */
  take(key: string, units: number, rule: WindowRule): Promise<WindowedTake>;
  /** Deletes the state of keys whose windows have emptied; returns how many records went. */
  purgeExpired(): Promise<number>;
}

export interface WindowedCounterStoreOptions {
  /** Clock in epoch ms (default Date.now); windows compare clocks of several hosts, so keep them NTP-synced. */
  readonly now?: () => number;
  /** How often a store deletes emptied windows on its own while taking (default every 10 minutes). */
  readonly purgeEveryMs?: number;
}

/** Slices per window. */
export const WINDOW_SLICES = 60;

const MAX_KEY_LENGTH = 512;

/** Width of one slice of `rule`'s window (at least 1 ms). */
export function sliceWidthOf(rule: WindowRule): number {
  return Math.max(1, Math.ceil(rule.windowMs / WINDOW_SLICES));
}

/** When the state `slices` stops mattering: after its last slice has left the window. */
export function windowExpiresAt(slices: readonly WindowSlice[], rule: WindowRule): number {
  return slices.reduce((latest, s) => Math.max(latest, s.end), 0) + rule.windowMs;
}

/**
 * The pure decision every adapter applies inside its own atomic step: drops slices that left the window, then
 * grants (adding `units` to the current slice) or refuses with the time until enough units will have left.
 */
export function takeFromWindow(
  slices: readonly WindowSlice[],
  now: number,
  units: number,
  rule: WindowRule,
): { readonly take: WindowedTake; readonly slices: WindowSlice[] } {
  const live = slices.filter((s) => s.end > now - rule.windowMs).sort((a, b) => a.end - b.end);
  const used = live.reduce((n, s) => n + s.units, 0);
  if (used + units > rule.limit) {
    return {
      take: { granted: false, used, retryAfterMs: retryAfterMs(live, now, used + units - rule.limit, rule) },
      slices: live,
    };
  }
  const width = sliceWidthOf(rule);
  const start = Math.floor(now / width) * width;
  const current = live.findIndex((s) => s.start === start);
  const next =
    current === -1
      ? [...live, { start, end: start + width, units }].sort((a, b) => a.end - b.end)
      : live.map((s, i) => (i === current ? { ...s, units: s.units + units } : s));
  return { take: { granted: true, used: used + units }, slices: next };
}

function retryAfterMs(liveByEnd: readonly WindowSlice[], now: number, excess: number, rule: WindowRule): number {
  let freed = 0;
  for (const s of liveByEnd) {
    freed += s.units;
    // The slice leaves the window once its end is a whole window behind.
    if (freed >= excess) return Math.max(1, s.end + rule.windowMs - now);
  }
  // More than the limit in one take: no amount of waiting helps; say a window, as a single-process limiter would.
  return rule.windowMs;
}

export function checkTakeArgs(key: string, units: number, rule: WindowRule): void {
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `counter key must be 1–${MAX_KEY_LENGTH} characters`);
  }
  if (!Number.isSafeInteger(units) || units < 1) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'counter units must be a positive integer');
  }
  if (!Number.isSafeInteger(rule.limit) || rule.limit < 1) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'counter limit must be a positive integer');
  }
  if (!Number.isSafeInteger(rule.windowMs) || rule.windowMs < 1) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'counter window must be a positive number of milliseconds');
  }
}
