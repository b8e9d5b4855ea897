/**
 * Collections and indexes of the vault's contact database (MongoDB; FerretDB in CI). The key store is a different
 * database (mongo-key-store.ts).
 */
import { MongoOutboxSource } from '@sealpost/bus';
import { ensureIndexes, type CollectionIndexes } from '@sealpost/storage';
import type { Db } from 'mongodb';

export const CONTACTS = 'contacts';
export const CONTACT_WRITES = 'contact_writes';
export const INDEX_ENTRIES = 'index_entries';
export const ERASURE_LEDGER = 'erasure_ledger';
export const SUPPRESSION_TOMBSTONES = 'suppression_tombstones';
export const OPERATIONS = 'operations';

export const CONTACT_STORE_INDEXES: CollectionIndexes = {
  [CONTACTS]: [
    { name: 'tenant_contact', key: { tenantId: 1, contactId: 1 }, unique: true },
    { name: 'tenant_last_activity', key: { tenantId: 1, lastActivityAt: 1 } },
  ],
  [INDEX_ENTRIES]: [
    // The uniqueness that keeps dedupe right; `_id` is the same key, so inserts are atomic even on FerretDB v1.
    {
      name: 'index_value',
      key: { tenantId: 1, fieldKind: 1, keyVersion: 1, normVersion: 1, value: 1 },
      unique: true,
    },
    { name: 'tenant_contact', key: { tenantId: 1, contactId: 1 } },
  ],
  // `_id` is the erasure id; suppression tombstones use their unique key as `_id` (atomic insert-if-absent).
  [ERASURE_LEDGER]: [{ name: 'tenant_contact', key: { tenantId: 1, contactId: 1 } }],
  [SUPPRESSION_TOMBSTONES]: [{ name: 'tenant', key: { tenantId: 1 } }],
  [OPERATIONS]: [{ name: 'tenant', key: { tenantId: 1 } }],
};

/** Creates collections and indexes (idempotent), including the outbox scan index on `outbox.id`. */
export async function ensureContactStore(db: Db): Promise<void> {
  await ensureIndexes(db, CONTACT_STORE_INDEXES);
  await new MongoOutboxSource(db.collection(CONTACTS)).ensureIndexes();
  await new MongoOutboxSource(db.collection(OPERATIONS)).ensureIndexes();
}

/** True for a duplicate-key error (E11000). */
export function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}
