/**
 * The KEY STORE on SQLite: wrapped tenant keys and wrapped per-contact data keys in their own file,
 * `<dataDir>/contact-vault-keys.sqlite`, never beside the contacts — a backup of the contact store never holds what
 * decrypts it, and erasure (deleting a data key) is not undone by restoring the contact store.
 */
import type {
  DataKeyStore,
  TenantKeyPurpose,
  TenantKeyStore,
  WrappedDataKey,
  WrappedTenantKey,
} from '@sealpost/crypto';
import { openSqlite, type SqliteDatabase, type SqliteMigration } from '@sealpost/storage';
import type { KeyInventory } from '../../ports/key-inventory';

export const KEY_STORE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'tenant keys and data keys',
    up: `
      CREATE TABLE tenant_keys (
        tenant_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        version INTEGER NOT NULL,
        kms_key_id TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, purpose, version)
      ) WITHOUT ROWID;
      CREATE TABLE data_keys (
        tenant_id TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        data_key_id TEXT NOT NULL,
        kek_version INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        PRIMARY KEY (tenant_id, contact_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'data keys by KEK version, retired tenant key versions',
    up: `
      CREATE INDEX data_keys_kek_version ON data_keys (tenant_id, kek_version, contact_id);
      CREATE TABLE retired_tenant_keys (
        tenant_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        version INTEGER NOT NULL,
        retired_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, purpose, version)
      ) WITHOUT ROWID;
    `,
  },
];

/** The key store file of a data directory. */
export const KEY_STORE_FILE_NAME = 'contact-vault-keys.sqlite';

/** Opens (creating and migrating) the key store file. */
export function openSqliteKeyStore(file: string): SqliteDatabase {
  return openSqlite(file, { migrations: KEY_STORE_MIGRATIONS });
}

interface TenantKeyRow {
  tenant_id: string;
  purpose: string;
  version: number;
  kms_key_id: string;
  ciphertext: Buffer;
  created_at: number;
}

function tenantKeyFrom(row: TenantKeyRow): WrappedTenantKey {
  return {
    tenantId: row.tenant_id,
    purpose: row.purpose as TenantKeyPurpose,
    version: row.version,
    kmsKeyId: row.kms_key_id,
    ciphertextBlob: new Uint8Array(row.ciphertext),
    createdAt: new Date(row.created_at),
  };
}

/** `TenantKeyStore` on SQLite (KMS-wrapped tenant keys only). */
export class SqliteTenantKeyStore implements TenantKeyStore {
  private readonly getStmt;
  private readonly latestStmt;
  private readonly insertStmt;

  constructor(db: SqliteDatabase) {
    this.getStmt = db.prepare('SELECT * FROM tenant_keys WHERE tenant_id = ? AND purpose = ? AND version = ?');
    this.latestStmt = db.prepare(
      'SELECT * FROM tenant_keys WHERE tenant_id = ? AND purpose = ? ORDER BY version DESC LIMIT 1',
    );
    this.insertStmt = db.prepare(
      `INSERT INTO tenant_keys (tenant_id, purpose, version, kms_key_id, ciphertext, created_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
  }

  async get(tenantId: string, purpose: TenantKeyPurpose, version: number): Promise<WrappedTenantKey | undefined> {
    const row = this.getStmt.get(tenantId, purpose, version) as TenantKeyRow | undefined;
    return row && tenantKeyFrom(row);
  }

  async latest(tenantId: string, purpose: TenantKeyPurpose): Promise<WrappedTenantKey | undefined> {
    const row = this.latestStmt.get(tenantId, purpose) as TenantKeyRow | undefined;
    return row && tenantKeyFrom(row);
  }

  async insert(key: WrappedTenantKey): Promise<WrappedTenantKey> {
    this.insertStmt.run(
      key.tenantId,
      key.purpose,
      key.version,
      key.kmsKeyId,
      Buffer.from(key.ciphertextBlob),
      key.createdAt.getTime(),
    );
    const stored = await this.get(key.tenantId, key.purpose, key.version);
    if (!stored) throw new Error('tenant key vanished right after its insert');
    return stored;
  }
}

interface DataKeyRow {
  data_key_id: string;
  kek_version: number;
  wrapped: Buffer;
}

/** `DataKeyStore` on SQLite (data keys wrapped by the tenant KEK only). */
export class SqliteDataKeyStore implements DataKeyStore {
  private readonly getStmt;
  private readonly insertStmt;
  private readonly rewrapStmt;
  private readonly deleteStmt;

  constructor(db: SqliteDatabase) {
    this.getStmt = db.prepare(
      'SELECT data_key_id, kek_version, wrapped FROM data_keys WHERE tenant_id = ? AND contact_id = ?',
    );
    this.insertStmt = db.prepare(
      `INSERT INTO data_keys (tenant_id, contact_id, data_key_id, kek_version, wrapped) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.rewrapStmt = db.prepare(
      `UPDATE data_keys SET kek_version = ?, wrapped = ? WHERE tenant_id = ? AND contact_id = ? AND data_key_id = ?`,
    );
    this.deleteStmt = db.prepare('DELETE FROM data_keys WHERE tenant_id = ? AND contact_id = ?');
  }

  async get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined> {
    const row = this.getStmt.get(tenantId, contactId) as DataKeyRow | undefined;
    return row && { dataKeyId: row.data_key_id, kekVersion: row.kek_version, wrapped: new Uint8Array(row.wrapped) };
  }

  async put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey> {
    this.insertStmt.run(tenantId, contactId, key.dataKeyId, key.kekVersion, Buffer.from(key.wrapped));
    const stored = await this.get(tenantId, contactId);
    if (!stored) throw new Error('data key vanished right after its insert');
    return stored;
  }

  async rewrap(tenantId: string, contactId: string, key: WrappedDataKey): Promise<boolean> {
    return (
      this.rewrapStmt.run(key.kekVersion, Buffer.from(key.wrapped), tenantId, contactId, key.dataKeyId).changes === 1
    );
  }

  async delete(tenantId: string, contactId: string): Promise<boolean> {
    return this.deleteStmt.run(tenantId, contactId).changes === 1;
  }
}

/** `KeyInventory` on the SQLite key store. */
export class SqliteKeyInventory implements KeyInventory {
  private readonly usingStmt;
  private readonly countUsingStmt;
  private readonly countStmt;
  private readonly retireStmt;
  private readonly retiredStmt;
  private readonly latestStmt;
  private readonly tenantsStmt;

  constructor(db: SqliteDatabase) {
    this.latestStmt = db.prepare('SELECT MAX(version) FROM tenant_keys WHERE tenant_id = ? AND purpose = ?').pluck();
    this.tenantsStmt = db
      .prepare("SELECT DISTINCT tenant_id FROM tenant_keys WHERE purpose = 'kek' ORDER BY tenant_id")
      .pluck();
    this.usingStmt = db
      .prepare(
        `SELECT contact_id FROM data_keys WHERE tenant_id = ? AND kek_version = ? AND contact_id > ?
         ORDER BY contact_id LIMIT ?`,
      )
      .pluck();
    this.countUsingStmt = db.prepare('SELECT COUNT(*) FROM data_keys WHERE tenant_id = ? AND kek_version = ?').pluck();
    this.countStmt = db.prepare('SELECT COUNT(*) FROM data_keys WHERE tenant_id = ?').pluck();
    this.retireStmt = db.prepare(
      `INSERT INTO retired_tenant_keys (tenant_id, purpose, version, retired_at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.retiredStmt = db
      .prepare('SELECT version FROM retired_tenant_keys WHERE tenant_id = ? AND purpose = ? ORDER BY version')
      .pluck();
  }

  async contactsUsingKek(
    tenantId: string,
    kekVersion: number,
    options: { after?: string; limit: number },
  ): Promise<string[]> {
    return this.usingStmt.all(tenantId, kekVersion, options.after ?? '', options.limit) as string[];
  }

  async countUsingKek(tenantId: string, kekVersion: number): Promise<number> {
    return this.countUsingStmt.get(tenantId, kekVersion) as number;
  }

  async countDataKeys(tenantId: string): Promise<number> {
    return this.countStmt.get(tenantId) as number;
  }

  async retire(tenantId: string, purpose: 'kek' | 'index', version: number, at: Date): Promise<void> {
    this.retireStmt.run(tenantId, purpose, version, at.getTime());
  }

  async retired(tenantId: string, purpose: 'kek' | 'index'): Promise<number[]> {
    return this.retiredStmt.all(tenantId, purpose) as number[];
  }

  async latestVersion(tenantId: string, purpose: 'kek' | 'index'): Promise<number> {
    return (this.latestStmt.get(tenantId, purpose) as number | null) ?? 0;
  }

  async tenants(): Promise<string[]> {
    return this.tenantsStmt.all() as string[];
  }
}
