import type { BlindIndexFieldKind } from '@sealpost/crypto';
import type { SqliteDatabase } from '@sealpost/storage';
import type { ClaimResult, IndexEntry, IndexEntryRepository, IndexKey } from '../../ports/index-entry-repository';

interface EntryRow {
  tenant_id: string;
  field_kind: string;
  key_version: number;
  norm_version: number;
  value: string;
  contact_id: string;
  claimed_at: number;
}

const KEY_WHERE = 'tenant_id = ? AND field_kind = ? AND key_version = ? AND norm_version = ? AND value = ?';

function keyArgs(k: IndexKey): unknown[] {
  return [k.tenantId, k.fieldKind, k.keyVersion, k.normVersion, k.value];
}

function fromRow(row: EntryRow): IndexEntry {
  return {
    tenantId: row.tenant_id,
    fieldKind: row.field_kind as BlindIndexFieldKind,
    keyVersion: row.key_version,
    normVersion: row.norm_version,
    value: row.value,
    contactId: row.contact_id,
    claimedAt: new Date(row.claimed_at),
  };
}

/** `IndexEntryRepository` on SQLite: the primary key is the uniqueness constraint. */
export class SqliteIndexEntryRepository implements IndexEntryRepository {
  private readonly insertStmt;
  private readonly findStmt;
  private readonly findManyStmt;
  private readonly releaseStmt;

  constructor(db: SqliteDatabase) {
    this.insertStmt = db.prepare(
      `INSERT INTO index_entries (tenant_id, field_kind, key_version, norm_version, value, contact_id, claimed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.findStmt = db.prepare(`SELECT * FROM index_entries WHERE ${KEY_WHERE}`);
    this.findManyStmt = db.prepare(
      `SELECT * FROM index_entries WHERE tenant_id = ? AND field_kind = ? AND key_version = ? AND norm_version = ?
         AND value IN (SELECT value FROM json_each(?))`,
    );
    this.releaseStmt = db.prepare(`DELETE FROM index_entries WHERE ${KEY_WHERE} AND contact_id = ?`);
  }

  async claim(entry: IndexEntry): Promise<ClaimResult> {
    const result = this.insertStmt.run(...keyArgs(entry), entry.contactId, entry.claimedAt.getTime());
    if (result.changes === 1) return { claimed: true };
    const owner = await this.find(entry);
    // Released between our insert and read: report it as owned by nobody we know; the caller retries.
    if (!owner) return this.claim(entry);
    return owner.contactId === entry.contactId ? { claimed: true } : { claimed: false, owner };
  }

  async find(key: IndexKey): Promise<IndexEntry | undefined> {
    const row = this.findStmt.get(...keyArgs(key)) as EntryRow | undefined;
    return row && fromRow(row);
  }

  async findMany(keys: readonly IndexKey[]): Promise<IndexEntry[]> {
    // One statement per (tenant, field kind, versions) with every value as a JSON array: SQLite probes the primary
    // key for each value itself, instead of a round trip from JavaScript per value (an import batch asks thousands).
    const groups = new Map<string, { key: IndexKey; values: string[] }>();
    for (const key of keys) {
      const group = `${key.tenantId}|${key.fieldKind}|${key.keyVersion}|${key.normVersion}`;
      let entry = groups.get(group);
      if (entry === undefined) groups.set(group, (entry = { key, values: [] }));
      entry.values.push(key.value);
    }
    const out: IndexEntry[] = [];
    for (const { key, values } of groups.values()) {
      const rows = this.findManyStmt.all(
        key.tenantId,
        key.fieldKind,
        key.keyVersion,
        key.normVersion,
        JSON.stringify(values),
      ) as EntryRow[];
      for (const row of rows) out.push(fromRow(row));
    }
    return out;
  }

  async release(key: IndexKey, contactId: string): Promise<boolean> {
    return this.releaseStmt.run(...keyArgs(key), contactId).changes === 1;
  }
}
