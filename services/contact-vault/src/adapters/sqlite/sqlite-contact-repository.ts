import { SqliteOutboxSource, appendPendingEvent, type EventEnvelope, type OutboxSource } from '@sealpost/bus';
import type { BlindIndex } from '@sealpost/crypto';
import type { SqliteDatabase } from '@sealpost/storage';
import {
  ContactExistsError,
  type ContactPage,
  type ContactRepository,
  type StoredContact,
  type Tombstone,
} from '../../ports/contact-repository';

interface ContactRow {
  tenant_id: string;
  contact_id: string;
  version: number;
  record: Buffer;
  field_kinds: string;
  indexes: string;
  created_at: number;
  updated_at: number;
  last_activity_at: number;
  erasure_id: string | null;
  erased_at: number | null;
}

function fromRow(row: ContactRow): StoredContact {
  return {
    tenantId: row.tenant_id,
    contactId: row.contact_id,
    version: row.version,
    record: new Uint8Array(row.record),
    fieldKinds: JSON.parse(row.field_kinds) as string[],
    indexes: JSON.parse(row.indexes) as BlindIndex[],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lastActivityAt: new Date(row.last_activity_at),
  };
}

/** Outbox aggregate key of a contact: tenant and id, so the relay's rows stay unambiguous. */
export function outboxKeyOf(tenantId: string, contactId: string): string {
  return `${tenantId}/${contactId}`;
}

/** `ContactRepository` on SQLite; the pending event is appended in the same transaction as the row. */
export class SqliteContactRepository implements ContactRepository {
  private readonly getStmt;
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly listStmt;
  private readonly createTx;
  private readonly updateTx;
  private readonly eraseTx;
  private readonly replaceIndexesStmt;
  private readonly inactiveStmt;
  private outboxSource: SqliteOutboxSource | undefined;

  constructor(private readonly db: SqliteDatabase) {
    this.getStmt = db.prepare('SELECT * FROM contacts WHERE tenant_id = ? AND contact_id = ?');
    this.replaceIndexesStmt = db.prepare(
      `UPDATE contacts SET indexes = ? WHERE tenant_id = ? AND contact_id = ? AND version = ? AND erased_at IS NULL`,
    );
    this.inactiveStmt = db.prepare(
      `SELECT * FROM contacts WHERE tenant_id = ? AND last_activity_at < ? AND erased_at IS NULL
       ORDER BY last_activity_at LIMIT ?`,
    );
    // A tombstone keeps ids and times only: the record becomes empty, field kinds and indexes are cleared.
    const tombstoneStmt = db.prepare(
      `UPDATE contacts SET version = version + 1, record = X'', field_kinds = '[]', indexes = '[]', erasure_id = ?,
         erased_at = ?, updated_at = ? WHERE tenant_id = ? AND contact_id = ? AND version = ? AND erased_at IS NULL`,
    );
    this.eraseTx = db.transaction(
      (tenantId: string, contactId: string, expected: number, t: Tombstone, event: EventEnvelope): boolean => {
        const at = t.erasedAt.getTime();
        if (tombstoneStmt.run(t.erasureId, at, at, tenantId, contactId, expected).changes !== 1) return false;
        appendPendingEvent(this.db, outboxKeyOf(tenantId, contactId), event);
        return true;
      },
    );
    this.insertStmt = db.prepare(
      `INSERT INTO contacts (tenant_id, contact_id, version, record, field_kinds, indexes, created_at, updated_at,
         last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.updateStmt = db.prepare(
      `UPDATE contacts SET version = ?, record = ?, field_kinds = ?, indexes = ?, updated_at = ?, last_activity_at = ?
       WHERE tenant_id = ? AND contact_id = ? AND version = ? AND erased_at IS NULL`,
    );
    this.listStmt = db.prepare(
      'SELECT * FROM contacts WHERE tenant_id = ? AND contact_id > ? AND erased_at IS NULL ORDER BY contact_id LIMIT ?',
    );
    this.createTx = db.transaction((c: StoredContact, event: EventEnvelope) => {
      try {
        this.insertStmt.run(...rowValues(c));
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new ContactExistsError('a contact with this id exists', { cause: err });
        }
        throw err;
      }
      appendPendingEvent(this.db, outboxKeyOf(c.tenantId, c.contactId), event);
    });
    this.updateTx = db.transaction((c: StoredContact, expected: number, event: EventEnvelope): boolean => {
      const result = this.updateStmt.run(
        c.version,
        Buffer.from(c.record),
        JSON.stringify(c.fieldKinds),
        JSON.stringify(c.indexes),
        c.updatedAt.getTime(),
        c.lastActivityAt.getTime(),
        c.tenantId,
        c.contactId,
        expected,
      );
      if (result.changes !== 1) return false;
      appendPendingEvent(this.db, outboxKeyOf(c.tenantId, c.contactId), event);
      return true;
    });
  }

  async get(tenantId: string, contactId: string): Promise<StoredContact | undefined> {
    const row = this.getStmt.get(tenantId, contactId) as ContactRow | undefined;
    return row && row.erased_at === null ? fromRow(row) : undefined;
  }

  async getMany(tenantId: string, contactIds: readonly string[]): Promise<StoredContact[]> {
    const out: StoredContact[] = [];
    for (const contactId of new Set(contactIds)) {
      const row = this.getStmt.get(tenantId, contactId) as ContactRow | undefined;
      if (row && row.erased_at === null) out.push(fromRow(row));
    }
    return out;
  }

  async erase(
    tenantId: string,
    contactId: string,
    expectedVersion: number,
    tombstone: Tombstone,
    event: EventEnvelope,
  ): Promise<boolean> {
    return this.eraseTx.immediate(tenantId, contactId, expectedVersion, tombstone, event);
  }

  async tombstone(tenantId: string, contactId: string): Promise<Tombstone | undefined> {
    const row = this.getStmt.get(tenantId, contactId) as ContactRow | undefined;
    return row && row.erased_at !== null && row.erasure_id !== null
      ? { erasureId: row.erasure_id, erasedAt: new Date(row.erased_at) }
      : undefined;
  }

  async replaceIndexes(
    tenantId: string,
    contactId: string,
    version: number,
    indexes: readonly BlindIndex[],
  ): Promise<boolean> {
    return this.replaceIndexesStmt.run(JSON.stringify(indexes), tenantId, contactId, version).changes === 1;
  }

  async listInactive(tenantId: string, before: Date, limit: number): Promise<StoredContact[]> {
    return (this.inactiveStmt.all(tenantId, before.getTime(), limit) as ContactRow[]).map(fromRow);
  }

  async create(contact: StoredContact, event: EventEnvelope): Promise<void> {
    this.createTx.immediate(contact, event);
  }

  async update(contact: StoredContact, expectedVersion: number, event: EventEnvelope): Promise<boolean> {
    return this.updateTx.immediate(contact, expectedVersion, event);
  }

  async list(tenantId: string, options: { pageSize: number; after?: string }): Promise<ContactPage> {
    const rows = this.listStmt.all(tenantId, options.after ?? '', options.pageSize + 1) as ContactRow[];
    const more = rows.length > options.pageSize;
    const contacts = rows.slice(0, options.pageSize).map(fromRow);
    const last = contacts[contacts.length - 1];
    return more && last ? { contacts, nextAfter: last.contactId } : { contacts };
  }

  outbox(): OutboxSource<unknown> {
    // The relay removes published events in batches (`removeEvents`): one commit, so one fsync, per batch.
    this.outboxSource ??= new SqliteOutboxSource(this.db);
    return this.outboxSource as OutboxSource<unknown>;
  }
}

/** Column values of a contact row, in `INSERT INTO contacts` order. */
export function rowValues(c: StoredContact): unknown[] {
  return [
    c.tenantId,
    c.contactId,
    c.version,
    Buffer.from(c.record),
    JSON.stringify(c.fieldKinds),
    JSON.stringify(c.indexes),
    c.createdAt.getTime(),
    c.updatedAt.getTime(),
    c.lastActivityAt.getTime(),
  ];
}
