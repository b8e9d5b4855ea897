/**
 * The KEY STORE on MongoDB: its own database (default `<contact database>_keys`), so that a backup of the contact
 * database never holds what decrypts it and the key store can keep a shorter backup retention (DESIGN "Keys").
 */
import type {
  DataKeyStore,
  TenantKeyPurpose,
  TenantKeyStore,
  WrappedDataKey,
  WrappedTenantKey,
} from '@sealpost/crypto';
import { ensureIndexes } from '@sealpost/storage';
import { Binary, type Collection, type Db } from 'mongodb';
import type { KeyInventory } from '../../ports/key-inventory';
import { isDuplicateKey } from './mongo-contact-store';

export const TENANT_KEYS = 'tenant_keys';
export const DATA_KEYS = 'data_keys';
export const RETIRED_TENANT_KEYS = 'retired_tenant_keys';

/** The key-store database name for a contact database: `<db>_keys`. */
export function keyStoreDatabaseOf(contactDatabase: string): string {
  return `${contactDatabase}_keys`;
}

/** Creates the key store's collections and indexes (idempotent). */
export async function ensureKeyStore(db: Db): Promise<void> {
  await ensureIndexes(db, {
    [TENANT_KEYS]: [{ name: 'tenant_purpose_version', key: { tenantId: 1, purpose: 1, version: -1 }, unique: true }],
    [DATA_KEYS]: [
      { name: 'tenant_contact', key: { tenantId: 1, contactId: 1 }, unique: true },
      { name: 'tenant_kek_version', key: { tenantId: 1, kekVersion: 1, contactId: 1 } },
    ],
    [RETIRED_TENANT_KEYS]: [{ name: 'tenant_purpose', key: { tenantId: 1, purpose: 1 } }],
  });
}

interface TenantKeyDoc {
  _id: string;
  tenantId: string;
  purpose: string;
  version: number;
  kmsKeyId: string;
  ciphertext: Binary;
  createdAt: Date;
}

function tenantKeyFrom(doc: TenantKeyDoc): WrappedTenantKey {
  return {
    tenantId: doc.tenantId,
    purpose: doc.purpose as TenantKeyPurpose,
    version: doc.version,
    kmsKeyId: doc.kmsKeyId,
    ciphertextBlob: new Uint8Array(doc.ciphertext.buffer),
    createdAt: doc.createdAt,
  };
}

/** `TenantKeyStore` on MongoDB (KMS-wrapped tenant keys only); `_id` makes insert-if-absent atomic. */
export class MongoTenantKeyStore implements TenantKeyStore {
  private readonly keys: Collection<TenantKeyDoc>;

  constructor(db: Db) {
    this.keys = db.collection<TenantKeyDoc>(TENANT_KEYS);
  }

  async get(tenantId: string, purpose: TenantKeyPurpose, version: number): Promise<WrappedTenantKey | undefined> {
    const doc = await this.keys.findOne({ _id: `${tenantId}/${purpose}/${version}` });
    return doc ? tenantKeyFrom(doc) : undefined;
  }

  async latest(tenantId: string, purpose: TenantKeyPurpose): Promise<WrappedTenantKey | undefined> {
    const doc = await this.keys.find({ tenantId, purpose }).sort({ version: -1 }).limit(1).next();
    return doc ? tenantKeyFrom(doc) : undefined;
  }

  async insert(key: WrappedTenantKey): Promise<WrappedTenantKey> {
    try {
      await this.keys.insertOne({
        _id: `${key.tenantId}/${key.purpose}/${key.version}`,
        tenantId: key.tenantId,
        purpose: key.purpose,
        version: key.version,
        kmsKeyId: key.kmsKeyId,
        ciphertext: new Binary(Buffer.from(key.ciphertextBlob)),
        createdAt: key.createdAt,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    const stored = await this.get(key.tenantId, key.purpose, key.version);
    if (!stored) throw new Error('tenant key vanished right after its insert');
    return stored;
  }
}

export interface DataKeyDoc {
  _id: string;
  tenantId: string;
  contactId: string;
  dataKeyId: string;
  kekVersion: number;
  wrapped: Binary;
}

/** `DataKeyStore` on MongoDB (data keys wrapped by the tenant KEK only). */
export class MongoDataKeyStore implements DataKeyStore {
  private readonly keys: Collection<DataKeyDoc>;

  constructor(db: Db) {
    this.keys = db.collection<DataKeyDoc>(DATA_KEYS);
  }

  async get(tenantId: string, contactId: string): Promise<WrappedDataKey | undefined> {
    const doc = await this.keys.findOne({ _id: `${tenantId}/${contactId}` });
    return doc
      ? { dataKeyId: doc.dataKeyId, kekVersion: doc.kekVersion, wrapped: new Uint8Array(doc.wrapped.buffer) }
      : undefined;
  }

  async put(tenantId: string, contactId: string, key: WrappedDataKey): Promise<WrappedDataKey> {
    try {
      await this.keys.insertOne({
        _id: `${tenantId}/${contactId}`,
        tenantId,
        contactId,
        dataKeyId: key.dataKeyId,
        kekVersion: key.kekVersion,
        wrapped: new Binary(Buffer.from(key.wrapped)),
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    const stored = await this.get(tenantId, contactId);
    if (!stored) throw new Error('data key vanished right after its insert');
    return stored;
  }

  async rewrap(tenantId: string, contactId: string, key: WrappedDataKey): Promise<boolean> {
    // TODO(rotation task): FerretDB v1 applies filtered updates as read-then-write; the rotation job must not run
    // concurrently with erasure of the same contact on it (production MongoDB is atomic per document).
    const result = await this.keys.updateOne(
      { _id: `${tenantId}/${contactId}`, dataKeyId: key.dataKeyId },
      { $set: { kekVersion: key.kekVersion, wrapped: new Binary(Buffer.from(key.wrapped)) } },
    );
    return result.matchedCount === 1;
  }

  async delete(tenantId: string, contactId: string): Promise<boolean> {
    const result = await this.keys.deleteOne({ _id: `${tenantId}/${contactId}` });
    return result.deletedCount === 1;
  }
}

interface RetiredDoc {
  _id: string;
  tenantId: string;
  purpose: string;
  version: number;
  retiredAt: Date;
}

/** `KeyInventory` on the MongoDB key store. */
export class MongoKeyInventory implements KeyInventory {
  private readonly keys: Collection<DataKeyDoc>;
  private readonly retiredKeys: Collection<RetiredDoc>;
  private readonly tenantKeys: Collection<TenantKeyDoc>;

  constructor(db: Db) {
    this.keys = db.collection<DataKeyDoc>(DATA_KEYS);
    this.retiredKeys = db.collection<RetiredDoc>(RETIRED_TENANT_KEYS);
    this.tenantKeys = db.collection<TenantKeyDoc>(TENANT_KEYS);
  }

  async contactsUsingKek(
    tenantId: string,
    kekVersion: number,
    options: { after?: string; limit: number },
  ): Promise<string[]> {
    const docs = await this.keys
      .find({ tenantId, kekVersion, contactId: { $gt: options.after ?? '' } }, { projection: { contactId: 1 } })
      .sort({ contactId: 1 })
      .limit(options.limit)
      .toArray();
    return docs.map((d) => d.contactId);
  }

  async countUsingKek(tenantId: string, kekVersion: number): Promise<number> {
    return this.keys.countDocuments({ tenantId, kekVersion });
  }

  async countDataKeys(tenantId: string): Promise<number> {
    return this.keys.countDocuments({ tenantId });
  }

  async retire(tenantId: string, purpose: 'kek' | 'index', version: number, at: Date): Promise<void> {
    try {
      await this.retiredKeys.insertOne({
        _id: `${tenantId}/${purpose}/${version}`,
        tenantId,
        purpose,
        version,
        retiredAt: at,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async retired(tenantId: string, purpose: 'kek' | 'index'): Promise<number[]> {
    const docs = await this.retiredKeys.find({ tenantId, purpose }).sort({ version: 1 }).toArray();
    return docs.map((d) => d.version);
  }

  async latestVersion(tenantId: string, purpose: 'kek' | 'index'): Promise<number> {
    const doc = await this.tenantKeys
      .find({ tenantId, purpose }, { projection: { version: 1 } })
      .sort({ version: -1 })
      .limit(1)
      .next();
    return doc?.version ?? 0;
  }

  async tenants(): Promise<string[]> {
    const ids = (await this.tenantKeys.distinct('tenantId', { purpose: 'kek' })) as string[];
    return ids.sort();
  }
}
