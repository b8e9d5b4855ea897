import { appendPendingEvent } from '@sealpost/bus';
import type { DataKeyStore } from '@sealpost/crypto';
import type { SqliteDatabase } from '@sealpost/storage';
import type { ContactWriteBatch, ImportBatchWriter, PendingDataKey } from '../../ports/import-batch-writer';
import { outboxKeyOf, rowValues } from './sqlite-contact-repository';
import { SqliteDataKeyStore } from './sqlite-key-store';

/** Thrown inside the transaction to roll it back when the batch lost a race; never leaves this module. */
class BatchLost extends Error {}

const KEY_WHERE = 'tenant_id = ? AND field_kind = ? AND key_version = ? AND norm_version = ? AND value = ?';

/** `ImportBatchWriter` on SQLite: one IMMEDIATE transaction per batch in each of the two files. */
export class SqliteImportBatchWriter implements ImportBatchWriter {
  readonly dataKeys: DataKeyStore;
  private readonly putKeysTx;
  private readonly writeTx;

  constructor(contactDb: SqliteDatabase, keyDb: SqliteDatabase) {
    this.dataKeys = new SqliteDataKeyStore(keyDb);
    const insertKey = keyDb.prepare(
      `INSERT INTO data_keys (tenant_id, contact_id, data_key_id, kek_version, wrapped) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.putKeysTx = keyDb.transaction((keys: readonly PendingDataKey[]) => {
      for (const k of keys) {
        if (
          insertKey.run(k.tenantId, k.contactId, k.key.dataKeyId, k.key.kekVersion, Buffer.from(k.key.wrapped))
            .changes !== 1
        ) {
          // Ids are fresh: an existing key means a programming error, and the record would not open with ours.
          throw new Error('a data key already exists for a new contact id');
        }
      }
    });

    const release = contactDb.prepare(`DELETE FROM index_entries WHERE ${KEY_WHERE} AND contact_id = ?`);
    const claim = contactDb.prepare(
      `INSERT INTO index_entries (tenant_id, field_kind, key_version, norm_version, value, contact_id, claimed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    const owner = contactDb.prepare(`SELECT contact_id FROM index_entries WHERE ${KEY_WHERE}`).pluck();
    const insert = contactDb.prepare(
      `INSERT INTO contacts (tenant_id, contact_id, version, record, field_kinds, indexes, created_at, updated_at,
         last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const update = contactDb.prepare(
      `UPDATE contacts SET version = ?, record = ?, field_kinds = ?, indexes = ?, updated_at = ?, last_activity_at = ?
       WHERE tenant_id = ? AND contact_id = ? AND version = ? AND erased_at IS NULL`,
    );
    this.writeTx = contactDb.transaction((batch: ContactWriteBatch) => {
      for (const r of batch.releases) {
        const k = r.key;
        release.run(k.tenantId, k.fieldKind, k.keyVersion, k.normVersion, k.value, r.contactId);
      }
      for (const e of batch.claims) {
        const args = [e.tenantId, e.fieldKind, e.keyVersion, e.normVersion, e.value];
        if (claim.run(...args, e.contactId, e.claimedAt.getTime()).changes === 1) continue;
        if (owner.get(...args) !== e.contactId) throw new BatchLost();
      }
      for (const { contact, events } of batch.creates) {
        insert.run(...rowValues(contact));
        for (const event of events)
          appendPendingEvent(contactDb, outboxKeyOf(contact.tenantId, contact.contactId), event);
      }
      for (const { contact: c, expectedVersion, events } of batch.updates) {
        const changed = update.run(
          c.version,
          Buffer.from(c.record),
          JSON.stringify(c.fieldKinds),
          JSON.stringify(c.indexes),
          c.updatedAt.getTime(),
          c.lastActivityAt.getTime(),
          c.tenantId,
          c.contactId,
          expectedVersion,
        ).changes;
        if (changed !== 1) throw new BatchLost();
        for (const event of events) appendPendingEvent(contactDb, outboxKeyOf(c.tenantId, c.contactId), event);
      }
    });
  }

  async putDataKeys(keys: readonly PendingDataKey[]): Promise<void> {
    if (keys.length > 0) this.putKeysTx.immediate(keys);
  }

  async writeContacts(batch: ContactWriteBatch): Promise<boolean> {
    try {
      this.writeTx.immediate(batch);
      return true;
    } catch (err) {
      if (err instanceof BatchLost) return false;
      throw err;
    }
  }
}
