/** Default period of the purges stores run on their own. */
export const DEFAULT_PURGE_EVERY_MS = 10 * 60_000;

/**
 * Says when a store should purge expired records on its own: at most every `everyMs`, inline in the call that is due
 * one (no timer to stop, and a purge never runs after the store's database closed).
 */
export class PurgeSchedule {
  private last: number;

  constructor(
    private readonly everyMs: number,
    now: number,
  ) {
    this.last = now;
  }

  due(now: number): boolean {
    if (now - this.last < this.everyMs && now >= this.last) return false;
    this.last = now;
    return true;
  }
}
