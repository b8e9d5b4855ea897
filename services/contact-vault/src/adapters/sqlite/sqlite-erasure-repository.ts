import type { BlindIndexFieldKind } from '@sealpost/crypto';
import type { SqliteDatabase } from '@sealpost/storage';
import type { ErasureLedgerEntry, ErasureRepository, SuppressionTombstone } from '../../ports/erasure-repository';

interface LedgerRow {
  erasure_id: string;
  tenant_id: string;
  contact_id: string;
  erased_at: number;
}

/** `ErasureRepository` on SQLite: ledger and suppression tombstones in the contact store file, as their own rows. */
export class SqliteErasureRepository implements ErasureRepository {
  private readonly appendStmt;
  private readonly ledgerStmt;
  private readonly suppressStmt;
  private readonly suppressedStmt;

  constructor(db: SqliteDatabase) {
    this.appendStmt = db.prepare(
      `INSERT INTO erasure_ledger (erasure_id, tenant_id, contact_id, erased_at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.ledgerStmt = db.prepare('SELECT * FROM erasure_ledger WHERE erasure_id > ? ORDER BY erasure_id LIMIT ?');
    this.suppressStmt = db.prepare(
      `INSERT INTO suppression_tombstones (tenant_id, field_kind, norm_version, value, erasure_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.suppressedStmt = db.prepare(
      `SELECT 1 FROM suppression_tombstones WHERE tenant_id = ? AND field_kind = ? AND norm_version = ? AND value = ?`,
    );
  }

  async appendLedger(e: ErasureLedgerEntry): Promise<void> {
    this.appendStmt.run(e.erasureId, e.tenantId, e.contactId, e.erasedAt.getTime());
  }

  async ledger(options: { after?: string; limit: number }): Promise<ErasureLedgerEntry[]> {
    return (this.ledgerStmt.all(options.after ?? '', options.limit) as LedgerRow[]).map((r) => ({
      erasureId: r.erasure_id,
      tenantId: r.tenant_id,
      contactId: r.contact_id,
      erasedAt: new Date(r.erased_at),
    }));
  }

  async putSuppression(t: SuppressionTombstone): Promise<void> {
    this.suppressStmt.run(t.tenantId, t.fieldKind, t.normVersion, t.value, t.erasureId, t.createdAt.getTime());
  }

  async isSuppressed(
    tenantId: string,
    fieldKind: BlindIndexFieldKind,
    normVersion: number,
    value: string,
  ): Promise<boolean> {
    return this.suppressedStmt.get(tenantId, fieldKind, normVersion, value) !== undefined;
  }
}
