/**
 * The vault's contact store on SQLite (embedded mode): contacts, index entries and the outbox in one file,
 * `<dataDir>/contact-vault.sqlite`. The key store is a different file (sqlite-key-store.ts).
 */
import { ensureSqliteOutbox } from '@sealpost/bus';
import { openSqlite, type SqliteDatabase, type SqliteMigration } from '@sealpost/storage';

/** Pending events of operations (key rotations): their own outbox table, relayed under their own lease. */
export const OPERATION_OUTBOX_TABLE = 'operation_outbox';

export const CONTACT_STORE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'contacts, index entries, outbox',
    up: (db) => {
      db.exec(`
        CREATE TABLE contacts (
          tenant_id TEXT NOT NULL,
          contact_id TEXT NOT NULL,
          version INTEGER NOT NULL,
          record BLOB NOT NULL,
          field_kinds TEXT NOT NULL,
          indexes TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          last_activity_at INTEGER NOT NULL,
          PRIMARY KEY (tenant_id, contact_id)
        ) WITHOUT ROWID;
        CREATE INDEX contacts_last_activity ON contacts (tenant_id, last_activity_at);
        CREATE TABLE index_entries (
          tenant_id TEXT NOT NULL,
          field_kind TEXT NOT NULL,
          key_version INTEGER NOT NULL,
          norm_version INTEGER NOT NULL,
          value TEXT NOT NULL,
          contact_id TEXT NOT NULL,
          claimed_at INTEGER NOT NULL,
          PRIMARY KEY (tenant_id, field_kind, key_version, norm_version, value)
        ) WITHOUT ROWID;
        CREATE INDEX index_entries_contact ON index_entries (tenant_id, contact_id);
      `);
      ensureSqliteOutbox(db, 'outbox');
    },
  },
  {
    version: 2,
    name: 'tombstones, erasure ledger, suppression tombstones, operations',
    up: `
      ALTER TABLE contacts ADD COLUMN erasure_id TEXT;
      ALTER TABLE contacts ADD COLUMN erased_at INTEGER;
      CREATE TABLE erasure_ledger (
        erasure_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        erased_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE suppression_tombstones (
        tenant_id TEXT NOT NULL,
        field_kind TEXT NOT NULL,
        norm_version INTEGER NOT NULL,
        value TEXT NOT NULL,
        erasure_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, field_kind, norm_version, value)
      ) WITHOUT ROWID;
      CREATE TABLE operations (
        operation_id TEXT PRIMARY KEY,
        body TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'operation outbox (key events)',
    up: (db) => ensureSqliteOutbox(db, OPERATION_OUTBOX_TABLE),
  },
  {
    version: 4,
    name: 'drop the unused index of index entries by contact',
    // Entries are only ever looked up by their value (the contact row lists its own); the index cost every claim
    // a second B-tree insert and every import commit its pages.
    up: 'DROP INDEX IF EXISTS index_entries_contact',
  },
];

/** Opens (creating and migrating) the contact store file. */
export function openSqliteContactStore(file: string): SqliteDatabase {
  return openSqlite(file, { migrations: CONTACT_STORE_MIGRATIONS });
}
