/**
 * Group commit for the embedded bus: writes issued in the same event-loop turn (1000 in-flight publishes,
 * a batch of acks) run in ONE IMMEDIATE transaction, so they share one WAL fsync (synchronous=FULL stays).
 * Each write runs in its own savepoint: one that throws is rolled back alone and rejects alone; the others
 * commit. A write's promise resolves only after the COMMIT returned, i.e. once it is durable.
 *
 * Consumer bookkeeping (fetch marking deliveries pending, acks, retries) is `relaxed`: a group holding only
 * such writes commits with synchronous=NORMAL, i.e. without its own fsync. Losing it to a power cut means
 * redelivery, which at-least-once consumers absorb (JetStream keeps consumer state the same way). It is never
 * reordered before a durable write: the WAL is one append-only file, so the next fsynced commit (any publish)
 * makes every earlier frame durable too. A group with at least one durable write (publish, dead-letter) is
 * fsynced as before.
 */
import type Database from 'better-sqlite3';
import { BusClosedError } from '../errors';

/** `durable`: fsynced before the write resolves; `relaxed`: may ride on the next fsync (see above). */
export type WriteDurability = 'durable' | 'relaxed';

interface Queued {
  readonly run: () => unknown;
  readonly durable: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommit {
  private queue: Queued[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    /** Upper bound on writes per transaction, so one commit never holds the write lock for long. */
    private readonly maxPerCommit = 4096,
  ) {}

  /** Queues `run` for the next group commit; resolves with its result once committed. */
  write<T>(run: () => T, durability: WriteDurability = 'durable'): Promise<T> {
    if (this.closed) return Promise.reject(new BusClosedError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, durable: durability === 'durable', resolve: resolve as (value: unknown) => void, reject });
      // setImmediate, not a microtask: callers that await one write and issue the next (a window of
      // workers) all re-issue within the same turn, after the previous commit resolved them.
      this.scheduled ??= setImmediate(() => this.flushScheduled());
    });
  }

  /**
   * Commits everything queued, plus `then` (if given) in the same transaction, synchronously. Returns
   * `then`'s result; throws its error (after the queued writes committed) or the commit's error.
   */
  flush<T>(then?: () => T, thenDurability: WriteDurability = 'durable'): T | undefined {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    let result: T | undefined;
    let thenFailed: { error: unknown } | undefined;
    while (this.queue.length > 0 || then !== undefined) {
      const batch = this.queue.splice(0, this.maxPerCommit);
      const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
      const last = this.queue.length === 0 ? then : undefined;
      const durable = batch.some((item) => item.durable) || (last !== undefined && thenDurability === 'durable');
      // exec, not a prepared statement: SQLite applies this pragma when it compiles it.
      if (!durable) this.db.exec('PRAGMA synchronous = NORMAL');
      try {
        this.db
          .transaction(() => {
            for (const item of batch) {
              try {
                outcomes.push({ ok: true, value: this.db.transaction(item.run)() });
              } catch (error) {
                outcomes.push({ ok: false, error });
              }
            }
            if (last !== undefined) {
              try {
                result = this.db.transaction(last)();
              } catch (error) {
                thenFailed = { error };
              }
            }
          })
          .immediate();
      } catch (error) {
        // The commit itself failed: nothing of this group is stored.
        for (const item of batch) item.reject(error);
        throw error;
      } finally {
        if (!durable) this.db.exec('PRAGMA synchronous = FULL');
        if (last !== undefined) then = undefined;
      }
      batch.forEach((item, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(outcome.error);
      });
    }
    if (thenFailed !== undefined) throw thenFailed.error;
    return result;
  }

  private flushScheduled(): void {
    try {
      this.flush();
    } catch {
      // The failed group's writes were rejected; their callers see the error. Later writes get a new try.
      if (this.queue.length > 0) this.scheduled ??= setImmediate(() => this.flushScheduled());
    }
  }

  /** Commits what is queued and refuses further writes. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
    }
  }
}
