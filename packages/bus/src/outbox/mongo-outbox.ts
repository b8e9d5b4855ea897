/**
 * MongoDB side of the outbox. The state change and its events go into ONE update of the aggregate's
 * document (`$push` to `outbox`), so there is no window where one is stored without the other and no
 * multi-document transaction is needed. The relay removes each event with `$pull` by id.
 */
import type { AnyBulkWriteOperation, Collection, Document, Filter, UpdateFilter } from 'mongodb';
import { BusError } from '../errors';
import type { EventEnvelope } from '../port';
import { toOutboxEntry, type OutboxEntry } from './outbox-entry';
import type { OutboxSource, PendingDocument, PublishedEvent } from './outbox-source';

export const OUTBOX_FIELD = 'outbox';

/** A document that may carry pending events. */
export interface OutboxDocument extends Document {
  outbox?: OutboxEntry[];
}

/** The writer's update touches the outbox in a way that could lose pending events. */
export class OutboxUpdateError extends BusError {
  constructor(message: string) {
    super('BUS_OUTBOX_INVALID_UPDATE', message);
  }
}

function touchesOutbox(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  return Object.keys(value).some((path) => path === OUTBOX_FIELD || path.startsWith(`${OUTBOX_FIELD}.`));
}

/**
 * Returns `update` with `envelopes` appended to the document's outbox via `$push` (combined with any
 * `$push` already present). Throws `OutboxUpdateError` for replacement documents or updates that `$set`,
 * `$unset`, `$pull`, `$pop` or `$rename` the outbox — they could overwrite events not yet published.
 */
export function withPendingEvents<T extends Document>(
  update: UpdateFilter<T>,
  envelopes: readonly EventEnvelope[],
): UpdateFilter<T> {
  const keys = Object.keys(update);
  if (keys.some((key) => !key.startsWith('$')))
    throw new OutboxUpdateError('outbox events need an update with operators, not a replacement document');
  for (const op of ['$set', '$unset', '$pull', '$pullAll', '$pop', '$rename', '$setOnInsert', '$addToSet']) {
    if (touchesOutbox((update as Record<string, unknown>)[op]))
      throw new OutboxUpdateError(`update must not ${op} the outbox field`);
  }
  if (envelopes.length === 0) return update;
  const entries = envelopes.map(toOutboxEntry);
  const push = { ...(update.$push as Record<string, unknown> | undefined) };
  const existing = push[OUTBOX_FIELD];
  const before: unknown[] =
    existing === undefined
      ? []
      : typeof existing === 'object' && existing !== null && '$each' in existing
        ? [...(existing as { $each: unknown[] }).$each]
        : [existing];
  push[OUTBOX_FIELD] = { $each: [...before, ...entries] };
  return { ...update, $push: push } as UpdateFilter<T>;
}

/** `withPendingEvents` for a single event. */
export function withPendingEvent<T extends Document>(
  update: UpdateFilter<T>,
  envelope: EventEnvelope,
): UpdateFilter<T> {
  return withPendingEvents(update, [envelope]);
}

/**
 * Pending events of one collection. Create an index on `outbox.id` (multikey) so the scan for documents
 * with pending events stays cheap; FerretDB v1 lacks partial indexes, so no partial index is assumed.
 */
export class MongoOutboxSource<T extends OutboxDocument = OutboxDocument> implements OutboxSource<unknown> {
  /**
   * FerretDB v1 (the CI server) rewrites each document of a bulk write in turn, ~15-30 ms each here, and a bulk write
   * of 100 took over 30 s (superlinear); 20 keep one batch
   * well inside the relay's lease term, while MongoDB applies them in one round trip either way.
   */
  readonly removeBatchLimit = 20;

  constructor(private readonly collection: Collection<T>) {}

  /** Creates the `outbox.id` index (idempotent). */
  async ensureIndexes(): Promise<void> {
    await this.collection.createIndex({ [`${OUTBOX_FIELD}.id`]: 1 }, { name: 'outbox_id' });
  }

  async listPending(limit: number): Promise<PendingDocument<unknown>[]> {
    const filter = { [`${OUTBOX_FIELD}.0`]: { $exists: true } } as Filter<T>;
    const docs = await this.collection
      .find(filter, { projection: { [OUTBOX_FIELD]: 1 } })
      .limit(limit)
      .toArray();
    return docs.map((doc) => ({ key: doc._id, events: (doc[OUTBOX_FIELD] as OutboxEntry[] | undefined) ?? [] }));
  }

  async removeEvent(key: unknown, entry: OutboxEntry): Promise<void> {
    // `$pull` of the element exactly as listed, not `{id}` as a condition: FerretDB v1 (the CI server) only
    // pulls equal elements and silently ignores condition documents. The element holds the unique event id,
    // so no other event can match; the rest of the array is never rewritten.
    await this.collection.updateOne(
      { _id: key } as Filter<T>,
      {
        $pull: { [OUTBOX_FIELD]: entry },
      } as unknown as UpdateFilter<T>,
    );
  }

  /**
   * One unordered bulk write of the same `$pull` as `removeEvent`, one per event (the element as listed). A failed
   * removal leaves its event pending: it is published again and the bus drops the duplicate by id.
   */
  async removeEvents(events: readonly PublishedEvent<unknown>[]): Promise<void> {
    if (events.length === 0) return;
    const operations = events.map(
      ({ key, entry }) =>
        ({
          updateOne: {
            filter: { _id: key } as Filter<T>,
            update: { $pull: { [OUTBOX_FIELD]: entry } } as unknown as UpdateFilter<T>,
          },
        }) as AnyBulkWriteOperation<T>,
    );
    await this.collection.bulkWrite(operations, { ordered: false });
  }
}
