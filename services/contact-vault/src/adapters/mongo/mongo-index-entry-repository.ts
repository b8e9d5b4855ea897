import type { BlindIndexFieldKind } from '@sealpost/crypto';
import type { Collection, Db } from 'mongodb';
import type { ClaimResult, IndexEntry, IndexEntryRepository, IndexKey } from '../../ports/index-entry-repository';
import { INDEX_ENTRIES, isDuplicateKey } from './mongo-contact-store';

export interface EntryDoc {
  _id: string;
  tenantId: string;
  fieldKind: string;
  keyVersion: number;
  normVersion: number;
  value: string;
  contactId: string;
  claimedAt: Date;
}

/** `_id` of an index entry: its unique key. */
export function entryId(k: IndexKey): string {
  return `${k.tenantId}/${k.fieldKind}/${k.keyVersion}/${k.normVersion}/${k.value}`;
}

function fromDoc(doc: EntryDoc): IndexEntry {
  return {
    tenantId: doc.tenantId,
    fieldKind: doc.fieldKind as BlindIndexFieldKind,
    keyVersion: doc.keyVersion,
    normVersion: doc.normVersion,
    value: doc.value,
    contactId: doc.contactId,
    claimedAt: doc.claimedAt,
  };
}

/** `IndexEntryRepository` on MongoDB: one document per value, `_id` = the unique key (atomic insert-if-absent). */
export class MongoIndexEntryRepository implements IndexEntryRepository {
  private readonly entries: Collection<EntryDoc>;

  constructor(db: Db) {
    this.entries = db.collection<EntryDoc>(INDEX_ENTRIES);
  }

  async claim(entry: IndexEntry): Promise<ClaimResult> {
    for (;;) {
      try {
        await this.entries.insertOne({
          _id: entryId(entry),
          tenantId: entry.tenantId,
          fieldKind: entry.fieldKind,
          keyVersion: entry.keyVersion,
          normVersion: entry.normVersion,
          value: entry.value,
          contactId: entry.contactId,
          claimedAt: entry.claimedAt,
        });
        return { claimed: true };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      const owner = await this.find(entry);
      // Released between our insert and read: try again.
      if (!owner) continue;
      return owner.contactId === entry.contactId ? { claimed: true } : { claimed: false, owner };
    }
  }

  async find(key: IndexKey): Promise<IndexEntry | undefined> {
    const doc = await this.entries.findOne({ _id: entryId(key) });
    return doc ? fromDoc(doc) : undefined;
  }

  async findMany(keys: readonly IndexKey[]): Promise<IndexEntry[]> {
    if (keys.length === 0) return [];
    const docs = await this.entries.find({ _id: { $in: [...new Set(keys.map(entryId))] } }).toArray();
    return docs.map(fromDoc);
  }

  async release(key: IndexKey, contactId: string): Promise<boolean> {
    const result = await this.entries.deleteOne({ _id: entryId(key), contactId });
    return result.deletedCount === 1;
  }
}
