/** Where the relay finds pending events: the aggregates' own documents/rows. */
import type { OutboxEntry } from './outbox-entry';

export interface PendingDocument<K = unknown> {
  /** The aggregate document's key (`_id` in MongoDB). */
  readonly key: K;
  /** Pending events in the order they were written. */
  readonly events: readonly OutboxEntry[];
}

export interface OutboxSource<K = unknown> {
  /** Up to `limit` documents that still hold pending events. */
  listPending(limit: number): Promise<PendingDocument<K>[]>;
  /**
   * Removes one pending event — the element equal to `entry`, as listed; ids are unique, so this is removal
   * by id — never rewriting the rest. A no-op when it is already gone.
   */
  removeEvent(key: K, entry: OutboxEntry): Promise<void>;
}
