import {
  checkTakeArgs,
  takeFromWindow,
  windowExpiresAt,
  type WindowRule,
  type WindowSlice,
  type WindowedCounterStore,
  type WindowedCounterStoreOptions,
  type WindowedTake,
} from './windowed-counter';
import { DEFAULT_PURGE_EVERY_MS, PurgeSchedule } from './purge-schedule';

/**
 * WindowedCounterStore in this process's memory: one process only (tests, tools). Replicas need the SQLite or
 * MongoDB store, or each of them hands out the whole limit.
 */
export class MemoryWindowedCounterStore implements WindowedCounterStore {
  private readonly windows = new Map<string, { slices: WindowSlice[]; expiresAt: number }>();
  private readonly now: () => number;
  private readonly purges: PurgeSchedule;

  constructor(options: WindowedCounterStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.purges = new PurgeSchedule(options.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS, this.now());
  }

  async take(key: string, units: number, rule: WindowRule): Promise<WindowedTake> {
    checkTakeArgs(key, units, rule);
    const now = this.now();
    if (this.purges.due(now)) this.purgeAt(now);
    const held = this.windows.get(key);
    const { take, slices } = takeFromWindow(held && held.expiresAt > now ? held.slices : [], now, units, rule);
    if (take.granted) this.windows.set(key, { slices, expiresAt: windowExpiresAt(slices, rule) });
    return take;
  }

  async purgeExpired(): Promise<number> {
    return this.purgeAt(this.now());
  }

  private purgeAt(now: number): number {
    let purged = 0;
    for (const [key, held] of this.windows) {
      if (held.expiresAt <= now) {
        this.windows.delete(key);
        purged++;
      }
    }
    return purged;
  }
}
