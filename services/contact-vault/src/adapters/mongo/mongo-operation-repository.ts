import type { Collection, Db } from 'mongodb';
import type { OperationRecord, OperationRepository } from '../../ports/operation-repository';
import { OPERATIONS } from './mongo-contact-store';

type OperationDoc = Omit<OperationRecord, 'operationId'> & { _id: string };

/** `OperationRepository` on MongoDB. */
export class MongoOperationRepository implements OperationRepository {
  private readonly ops: Collection<OperationDoc>;

  constructor(db: Db) {
    this.ops = db.collection<OperationDoc>(OPERATIONS);
  }

  async save(op: OperationRecord): Promise<void> {
    const { operationId, ...rest } = op;
    await this.ops.replaceOne({ _id: operationId }, rest, { upsert: true });
  }

  async get(operationId: string): Promise<OperationRecord | undefined> {
    const doc = await this.ops.findOne({ _id: operationId });
    if (!doc) return undefined;
    const { _id, ...rest } = doc;
    return { operationId: _id, ...rest };
  }
}
