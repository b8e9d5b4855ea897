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
  /**
   * Optional: removes many published events in one go (SQLite: one transaction, so one fsync; MongoDB: one round
   * trip), each exactly as `removeEvent` would. A relay with a batch publisher uses it to publish and remove in
   * batches; a source without it is relayed event by event.
   */
  removeEvents?(events: readonly PublishedEvent<K>[]): Promise<void>;
  /**
   * Optional: the most events one `removeEvents` call should take, so one batch stays short against the relay's
   * lease (FerretDB v1 rewrites each document in turn, tens of ms each). Default: no limit beyond the relay's own.
   */
  readonly removeBatchLimit?: number;
}

/** A listed event that the bus has acknowledged, to be removed from its aggregate. */
export interface PublishedEvent<K = unknown> {
  readonly key: K;
  readonly entry: OutboxEntry;
}
