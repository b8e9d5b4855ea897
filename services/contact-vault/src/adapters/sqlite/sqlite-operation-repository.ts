import type { SqliteDatabase } from '@sealpost/storage';
import type { OperationRecord, OperationRepository } from '../../ports/operation-repository';

/** `OperationRepository` on SQLite (ids, codes, progress and receipts only: no personal data). */
export class SqliteOperationRepository implements OperationRepository {
  private readonly saveStmt;
  private readonly getStmt;

  constructor(db: SqliteDatabase) {
    this.saveStmt = db.prepare(
      `INSERT INTO operations (operation_id, body) VALUES (?, ?)
       ON CONFLICT (operation_id) DO UPDATE SET body = excluded.body`,
    );
    this.getStmt = db.prepare('SELECT body FROM operations WHERE operation_id = ?').pluck();
  }

  async save(op: OperationRecord): Promise<void> {
    this.saveStmt.run(op.operationId, JSON.stringify(op));
  }

  async get(operationId: string): Promise<OperationRecord | undefined> {
    const body = this.getStmt.get(operationId) as string | undefined;
    if (body === undefined) return undefined;
    const raw = JSON.parse(body) as OperationRecord & { createdAt: string; updatedAt: string };
    return { ...raw, createdAt: new Date(raw.createdAt), updatedAt: new Date(raw.updatedAt) };
  }
}
