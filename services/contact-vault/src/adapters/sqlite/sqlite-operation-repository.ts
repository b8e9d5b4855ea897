import { SqliteOutboxSource, appendPendingEvent, type EventEnvelope, type OutboxSource } from '@sealpost/bus';
import type { SqliteDatabase } from '@sealpost/storage';
import type { OperationRecord, OperationRepository } from '../../ports/operation-repository';
import { OPERATION_OUTBOX_TABLE } from './sqlite-contact-store';

/** `OperationRepository` on SQLite (ids, codes, progress and receipts only: no personal data). */
export class SqliteOperationRepository implements OperationRepository {
  private readonly saveStmt;
  private readonly getStmt;
  private readonly saveWithEventsTx;
  private outboxSource: SqliteOutboxSource | undefined;

  constructor(private readonly db: SqliteDatabase) {
    this.saveStmt = db.prepare(
      `INSERT INTO operations (operation_id, body) VALUES (?, ?)
       ON CONFLICT (operation_id) DO UPDATE SET body = excluded.body`,
    );
    this.getStmt = db.prepare('SELECT body FROM operations WHERE operation_id = ?').pluck();
    // The record and its events commit together: the relay never sees an event of a state that was not saved.
    this.saveWithEventsTx = db.transaction((op: OperationRecord, events: readonly EventEnvelope[]) => {
      this.saveStmt.run(op.operationId, JSON.stringify(op));
      for (const event of events) appendPendingEvent(db, op.operationId, event, OPERATION_OUTBOX_TABLE);
    });
  }

  async save(op: OperationRecord): Promise<void> {
    this.saveStmt.run(op.operationId, JSON.stringify(op));
  }

  async saveWithEvents(op: OperationRecord, events: readonly EventEnvelope[]): Promise<void> {
    this.saveWithEventsTx.immediate(op, events);
  }

  async get(operationId: string): Promise<OperationRecord | undefined> {
    const body = this.getStmt.get(operationId) as string | undefined;
    if (body === undefined) return undefined;
    const raw = JSON.parse(body) as OperationRecord & { createdAt: string; updatedAt: string };
    return { ...raw, createdAt: new Date(raw.createdAt), updatedAt: new Date(raw.updatedAt) };
  }

  outbox(): OutboxSource<unknown> {
    this.outboxSource ??= new SqliteOutboxSource(this.db, OPERATION_OUTBOX_TABLE);
    return this.outboxSource as OutboxSource<unknown>;
  }
}
