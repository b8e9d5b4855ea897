/**
 * Test support: the vault's stores on either backend (the contract helper's temp file or fresh database), the use
 * cases over them with a local keyring, and raw dumps of everything stored — for canary checks.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ContactCipher,
  KeyHierarchy,
  LocalKeyring,
  kmsKeyIdResolver,
  type KeyHierarchyOptions,
} from '@sealpost/crypto';
import type { MongoContractEnv, SqliteContractEnv } from '@sealpost/storage/testing';
import {
  MongoIdempotencyStore,
  MongoLeaseStore,
  MongoWindowedCounterStore,
  SqliteIdempotencyStore,
  SqliteLeaseStore,
  SqliteWindowedCounterStore,
  type SqliteDatabase,
} from '@sealpost/storage';
import { BSON, type Db } from 'mongodb';
import { MongoContactRepository } from '../../src/adapters/mongo/mongo-contact-repository';
import { ensureContactStore } from '../../src/adapters/mongo/mongo-contact-store';
import { MongoImportBatchWriter } from '../../src/adapters/mongo/mongo-import-batch-writer';
import { MongoIndexEntryRepository } from '../../src/adapters/mongo/mongo-index-entry-repository';
import { MongoErasureRepository } from '../../src/adapters/mongo/mongo-erasure-repository';
import { MongoOperationRepository } from '../../src/adapters/mongo/mongo-operation-repository';
import {
  MongoDataKeyStore,
  MongoKeyInventory,
  MongoTenantKeyStore,
  ensureKeyStore,
  keyStoreDatabaseOf,
} from '../../src/adapters/mongo/mongo-key-store';
import { SqliteContactRepository } from '../../src/adapters/sqlite/sqlite-contact-repository';
import { openSqliteContactStore } from '../../src/adapters/sqlite/sqlite-contact-store';
import { SqliteImportBatchWriter } from '../../src/adapters/sqlite/sqlite-import-batch-writer';
import { SqliteIndexEntryRepository } from '../../src/adapters/sqlite/sqlite-index-entry-repository';
import { SqliteErasureRepository } from '../../src/adapters/sqlite/sqlite-erasure-repository';
import { SqliteOperationRepository } from '../../src/adapters/sqlite/sqlite-operation-repository';
import {
  SqliteDataKeyStore,
  SqliteKeyInventory,
  SqliteTenantKeyStore,
  openSqliteKeyStore,
} from '../../src/adapters/sqlite/sqlite-key-store';
import { StaticTenantPolicies } from '../../src/adapters/static-tenant-policies';
import type { VaultDeps } from '../../src/app/vault-deps';
import type { TenantPolicy } from '../../src/domain';
import type { OpenedVaultStores } from '../../src/service';

export interface VaultCtx {
  readonly stores: OpenedVaultStores;
  readonly deps: VaultDeps;
  readonly keys: KeyHierarchy;
  /** Another key hierarchy over the same KMS and tenant keys, with other cache bounds. */
  keysWith(cache: KeyHierarchyOptions['cache']): KeyHierarchy;
  /** Every byte the contact store holds (rows/documents, and for SQLite the raw files too). */
  dumpContactStore(): Promise<Buffer>;
  /** Every byte the key store holds. */
  dumpKeyStore(): Promise<Buffer>;
  /** Row/document counts of the contact store and key store, by table/collection. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

function rowsDump(db: SqliteDatabase): Buffer {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  const parts: Buffer[] = [];
  for (const table of tables) {
    for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]) {
      for (const value of Object.values(row)) {
        parts.push(Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8'), Buffer.from([0]));
      }
    }
  }
  return Buffer.concat(parts);
}

function filesDump(dir: string, prefix: string): Buffer {
  return Buffer.concat(
    readdirSync(dir)
      .filter((f) => f.startsWith(prefix))
      .map((f) => readFileSync(path.join(dir, f))),
  );
}

function sqliteCounts(db: SqliteDatabase, tables: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tables) out[t] = db.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get() as number;
  return out;
}

async function mongoDump(db: Db): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const { name } of await db.listCollections().toArray()) {
    for (const doc of await db.collection(name).find({}).toArray()) parts.push(Buffer.from(BSON.serialize(doc)));
  }
  return Buffer.concat(parts);
}

async function keyHierarchy(
  dir: string,
  tenantKeys: OpenedVaultStores['tenantKeys'],
): Promise<{ keys: KeyHierarchy; keysWith: VaultCtx['keysWith'] }> {
  const kms = await LocalKeyring.open(path.join(dir, 'kms', 'keyring.json'));
  const keysWith = (cache: KeyHierarchyOptions['cache']): KeyHierarchy =>
    new KeyHierarchy({
      kms,
      kmsKeyIdFor: kmsKeyIdResolver({ template: 'local/{tenant}' }),
      tenantKeys,
      ...(cache ? { cache } : {}),
    });
  return { keys: keysWith(undefined), keysWith };
}

function depsOf(stores: OpenedVaultStores, keys: KeyHierarchy, policy?: TenantPolicy): VaultDeps {
  return {
    contacts: stores.contacts,
    indexEntries: stores.indexEntries,
    keys,
    cipher: new ContactCipher({ keys, dataKeys: stores.dataKeys }),
    policies: new StaticTenantPolicies(policy),
    inventory: stores.inventory,
    ...(stores.importBatch ? { importBatch: stores.importBatch } : {}),
  };
}

/** SQLite half: contacts in `env.file`, keys in a second file of the same directory. */
export async function sqliteVault(env: SqliteContractEnv, policy?: TenantPolicy): Promise<VaultCtx> {
  const contactDb = openSqliteContactStore(env.file);
  const keyDb = openSqliteKeyStore(path.join(env.dir, 'contact-vault-keys.sqlite'));
  const stores: OpenedVaultStores = {
    contacts: new SqliteContactRepository(contactDb),
    indexEntries: new SqliteIndexEntryRepository(contactDb),
    tenantKeys: new SqliteTenantKeyStore(keyDb),
    dataKeys: new SqliteDataKeyStore(keyDb),
    leases: new SqliteLeaseStore(contactDb),
    idempotency: new SqliteIdempotencyStore(contactDb),
    quotaCounters: new SqliteWindowedCounterStore(contactDb),
    erasures: new SqliteErasureRepository(contactDb),
    operations: new SqliteOperationRepository(contactDb),
    inventory: new SqliteKeyInventory(keyDb),
    importBatch: new SqliteImportBatchWriter(contactDb, keyDb),
    async close() {
      if (contactDb.open) contactDb.close();
      if (keyDb.open) keyDb.close();
    },
  };
  const { keys, keysWith } = await keyHierarchy(env.dir, stores.tenantKeys);
  return {
    stores,
    keys,
    keysWith,
    deps: depsOf(stores, keys, policy),
    async dumpContactStore() {
      return Buffer.concat([rowsDump(contactDb), filesDump(env.dir, path.basename(env.file))]);
    },
    async dumpKeyStore() {
      return Buffer.concat([rowsDump(keyDb), filesDump(env.dir, 'contact-vault-keys.sqlite')]);
    },
    async counts() {
      return {
        ...sqliteCounts(contactDb, ['contacts', 'index_entries', 'outbox']),
        ...sqliteCounts(keyDb, ['tenant_keys', 'data_keys']),
      };
    },
    close: () => stores.close(),
  };
}

/** MongoDB half: contacts in the fresh database, keys in `<database>_keys` (dropped on close). */
export async function mongoVault(env: MongoContractEnv, policy?: TenantPolicy, dir?: string): Promise<VaultCtx> {
  const keyDb = env.db.client.db(keyStoreDatabaseOf(env.database));
  await ensureContactStore(env.db);
  await ensureKeyStore(keyDb);
  const stores: OpenedVaultStores = {
    contacts: new MongoContactRepository(env.db),
    indexEntries: new MongoIndexEntryRepository(env.db),
    tenantKeys: new MongoTenantKeyStore(keyDb),
    dataKeys: new MongoDataKeyStore(keyDb),
    leases: new MongoLeaseStore(env.db),
    idempotency: new MongoIdempotencyStore(env.db),
    quotaCounters: new MongoWindowedCounterStore(env.db),
    erasures: new MongoErasureRepository(env.db),
    operations: new MongoOperationRepository(env.db),
    inventory: new MongoKeyInventory(keyDb),
    importBatch: new MongoImportBatchWriter(env.db, keyDb),
    async close() {
      await keyDb.dropDatabase().catch(() => undefined);
    },
  };
  const kmsDir = dir ?? mkdtempSync(path.join(tmpdir(), 'sealpost-vault-kms-'));
  const { keys, keysWith } = await keyHierarchy(kmsDir, stores.tenantKeys);
  const count = async (db: Db, names: string[]): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const n of names) out[n] = await db.collection(n).countDocuments({});
    return out;
  };
  return {
    stores,
    keys,
    keysWith,
    deps: depsOf(stores, keys, policy),
    dumpContactStore: () => mongoDump(env.db),
    dumpKeyStore: () => mongoDump(keyDb),
    async counts() {
      const contacts = await count(env.db, ['contacts', 'index_entries']);
      // Pending events live inside contact documents on MongoDB.
      const docs = await env.db
        .collection('contacts')
        .find({}, { projection: { outbox: 1 } })
        .toArray();
      const outbox = docs.reduce((n, d) => n + ((d['outbox'] as unknown[] | undefined)?.length ?? 0), 0);
      return { ...contacts, outbox, ...(await count(keyDb, ['tenant_keys', 'data_keys'])) };
    },
    async close() {
      await stores.close();
      if (!dir) rmSync(kmsDir, { recursive: true, force: true });
    },
  };
}
