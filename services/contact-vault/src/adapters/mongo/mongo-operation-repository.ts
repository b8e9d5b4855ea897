import { MongoOutboxSource, withPendingEvents, type EventEnvelope, type OutboxSource } from '@sealpost/bus';
import type { Collection, Db } from 'mongodb';
import type { OperationRecord, OperationRepository } from '../../ports/operation-repository';
import { OPERATIONS } from './mongo-contact-store';

type OperationDoc = Omit<OperationRecord, 'operationId'> & { _id: string; outbox?: unknown[] };

/**
 * `OperationRepository` on MongoDB. An operation's queued events live in its document's `outbox` array, written in
 * the same single-document update as the record; saves `$set` the record's fields and never touch that array.
 */
export class MongoOperationRepository implements OperationRepository {
  private readonly ops: Collection<OperationDoc>;

  constructor(db: Db) {
    this.ops = db.collection<OperationDoc>(OPERATIONS);
  }

  async save(op: OperationRecord): Promise<void> {
    await this.saveWithEvents(op, []);
  }

  async saveWithEvents(op: OperationRecord, events: readonly EventEnvelope[]): Promise<void> {
    const { operationId, ...rest } = op;
    await this.ops.updateOne({ _id: operationId }, withPendingEvents({ $set: rest }, events), { upsert: true });
  }

  async get(operationId: string): Promise<OperationRecord | undefined> {
    const doc = await this.ops.findOne({ _id: operationId }, { projection: { outbox: 0 } });
    if (!doc) return undefined;
    const { _id, ...rest } = doc;
    return { operationId: _id, ...rest };
  }

  outbox(): OutboxSource<unknown> {
    return new MongoOutboxSource(this.ops as unknown as Collection);
  }
}
