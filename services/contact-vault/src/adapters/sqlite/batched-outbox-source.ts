import { SqliteOutboxSource, type OutboxEntry, type OutboxSource, type PendingDocument } from '@sealpost/bus';
import type { SqliteDatabase } from '@sealpost/storage';

/** How long a published event may stay listed before its removal is committed. */
const FLUSH_AFTER_MS = 50;

/**
 * The contacts outbox with removals committed in batches: the relay removes events one at a time, and on SQLite with
 * synchronous=FULL each removal would be its own fsync, competing with imports for the write lock. Removals are
 * queued and deleted in one transaction within 50 ms, and always before the next listing — so a listing never
 * returns an event already published. A crash in between only republishes (at-least-once; the bus and consumers
 * drop duplicates by event id). Same table layout as @sealpost/bus's SqliteOutboxSource (`aggregate`, `event_id`).
 * TODO(bus): replace with a batched `removeEvents` in @sealpost/bus's outbox source and relay.
 */
export class BatchedSqliteOutboxSource implements OutboxSource<string> {
  private readonly inner: SqliteOutboxSource;
  private readonly flushTx;
  private queue: { key: string; id: string }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(db: SqliteDatabase, table = 'outbox') {
    this.inner = new SqliteOutboxSource(db, table);
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new RangeError('invalid outbox table name');
    const del = db.prepare(`DELETE FROM ${table} WHERE aggregate = ? AND event_id = ?`);
    this.flushTx = db.transaction((items: readonly { key: string; id: string }[]) => {
      for (const i of items) del.run(i.key, i.id);
    });
  }

  async listPending(limit: number): Promise<PendingDocument<string>[]> {
    this.flush();
    return this.inner.listPending(limit);
  }

  async removeEvent(key: string, entry: OutboxEntry): Promise<void> {
    this.queue.push({ key, id: entry.id });
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_AFTER_MS);
      this.timer.unref();
    }
  }

  /** Commits the queued removals (also called on close). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const items = this.queue;
    this.queue = [];
    try {
      this.flushTx.immediate(items);
    } catch {
      // Not removed: they stay pending and are published again (duplicates are dropped by event id).
    }
  }
}
