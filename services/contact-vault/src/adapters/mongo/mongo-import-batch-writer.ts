import { toOutboxEntry, withPendingEvents } from '@sealpost/bus';
import type { DataKeyStore, WrappedDataKey } from '@sealpost/crypto';
import {
  Binary,
  MongoBulkWriteError,
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
} from 'mongodb';
import type { ContactWriteBatch, ImportBatchWriter, PendingDataKey } from '../../ports/import-batch-writer';
import type { IndexEntry } from '../../ports/index-entry-repository';
import { CONTACTS, CONTACT_WRITES, INDEX_ENTRIES } from './mongo-contact-store';
import { docId, toDoc, type ContactDoc, type WriteClaimDoc } from './mongo-contact-repository';
import { entryId, type EntryDoc } from './mongo-index-entry-repository';
import { DATA_KEYS, MongoDataKeyStore, type DataKeyDoc } from './mongo-key-store';

/**
 * Updates and deletes go in bulk writes of at most this many: FerretDB v1 (the CI server) takes superlinear time for
 * larger ones (a bulk write of 100 updates ran for over 30 s here, 20 take ~0.3 s); MongoDB is fast either way.
 */
const BULK_CHUNK = 20;

/** Runs `operations` as unordered bulk writes of `BULK_CHUNK`, one after another; returns the matched count. */
async function bulkInChunks<T extends Document>(
  collection: Collection<T>,
  operations: readonly AnyBulkWriteOperation<T>[],
): Promise<number> {
  let matched = 0;
  for (let start = 0; start < operations.length; start += BULK_CHUNK) {
    const result = await collection.bulkWrite(operations.slice(start, start + BULK_CHUNK), { ordered: false });
    matched += result.matchedCount;
  }
  return matched;
}

/** Index of every write that failed with a duplicate key; any other write error is thrown. */
function duplicatesOf(err: unknown): Set<number> {
  if (!(err instanceof MongoBulkWriteError)) throw err;
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  if (errors.length === 0 || errors.some((e) => e.code !== 11000)) throw err;
  return new Set(errors.map((e) => e.index));
}

/** Inserts unordered; returns the indexes of the documents that already existed. */
async function insertAll<T extends { _id: string }>(
  collection: Collection<T>,
  docs: readonly T[],
): Promise<Set<number>> {
  if (docs.length === 0) return new Set();
  try {
    await collection.insertMany(docs as Parameters<Collection<T>['insertMany']>[0], { ordered: false });
    return new Set();
  } catch (err) {
    return duplicatesOf(err);
  }
}

/**
 * `ImportBatchWriter` on MongoDB (FerretDB in CI), where a batch cannot be one transaction (FerretDB v1 has none).
 * It follows the row-by-row protocol (upsert-contact.ts) in bulk, so each crash point leaves what a crashed row-by-row
 * writer leaves, which readers already handle:
 *   1. reserve — index entries claimed with one unordered insertMany (unique `_id`: atomic even on FerretDB v1, a
 *      duplicate is a claim owned by another contact), and every version an update moves through claimed in
 *      `contact_writes` the same way. A lost reservation undoes the batch's own reservations and the batch is redone
 *      row by row (nothing else was written);
 *   2. write — new contacts with their pending events in one insertMany, updates in unordered bulk writes (each
 *      still conditioned on its expected version, which its claim makes exclusive);
 *   3. release — values the batch's contacts no longer hold, then the superseded version claims.
 * A crash after 1 leaves claims whose contact was never written (taken over after the claim grace); after 2,
 * stale entries the lookups ignore.
 */
export class MongoImportBatchWriter implements ImportBatchWriter {
  readonly dataKeys: DataKeyStore;
  private readonly keys: Collection<DataKeyDoc>;
  private readonly contacts: Collection<ContactDoc>;
  private readonly writes: Collection<WriteClaimDoc>;
  private readonly entries: Collection<EntryDoc>;

  constructor(contactDb: Db, keyDb: Db) {
    this.dataKeys = new MongoDataKeyStore(keyDb);
    this.keys = keyDb.collection<DataKeyDoc>(DATA_KEYS);
    this.contacts = contactDb.collection<ContactDoc>(CONTACTS);
    this.writes = contactDb.collection<WriteClaimDoc>(CONTACT_WRITES);
    this.entries = contactDb.collection<EntryDoc>(INDEX_ENTRIES);
  }

  async readDataKeys(tenantId: string, contactIds: readonly string[]): Promise<ReadonlyMap<string, WrappedDataKey>> {
    const docs = await this.keys
      .find({ _id: { $in: contactIds.map((id) => `${tenantId}/${id}`) }, tenantId })
      .toArray();
    return new Map(
      docs.map((d) => [
        d.contactId,
        { dataKeyId: d.dataKeyId, kekVersion: d.kekVersion, wrapped: new Uint8Array(d.wrapped.buffer) },
      ]),
    );
  }

  async putDataKeys(keys: readonly PendingDataKey[]): Promise<void> {
    const docs = keys.map((k): DataKeyDoc => ({
      _id: `${k.tenantId}/${k.contactId}`,
      tenantId: k.tenantId,
      contactId: k.contactId,
      dataKeyId: k.key.dataKeyId,
      kekVersion: k.key.kekVersion,
      wrapped: new Binary(Buffer.from(k.key.wrapped)),
    }));
    // Ids are fresh: an existing key means a programming error, and the record would not open with ours.
    if ((await insertAll(this.keys, docs)).size > 0) throw new Error('a data key already exists for a new contact id');
  }

  async writeContacts(batch: ContactWriteBatch): Promise<boolean> {
    if (!(await this.reserve(batch))) return false;

    if (batch.creates.length > 0) {
      const docs = batch.creates.map(({ contact, events }) => ({
        ...toDoc(contact),
        outbox: events.map(toOutboxEntry),
      }));
      // Fresh ids: a duplicate is a programming error, thrown like any other failure.
      await this.contacts.insertMany(docs, { ordered: false });
    }
    if (batch.updates.length > 0) {
      const operations = batch.updates.map(
        ({ contact, expectedVersion, events }): AnyBulkWriteOperation<ContactDoc> => {
          const { _id, ...fields } = toDoc(contact);
          return {
            updateOne: {
              filter: { _id, tenantId: contact.tenantId, version: expectedVersion },
              update: withPendingEvents<ContactDoc>({ $set: fields }, events),
            },
          };
        },
      );
      const matched = await bulkInChunks(this.contacts, operations);
      // Every version was claimed: a miss means a claim was taken over (a writer stalled past the stale-claim age).
      if (matched !== operations.length) {
        throw new Error('an imported contact moved past a version this batch had claimed');
      }
    }

    const cleanups: Promise<unknown>[] = [];
    if (batch.releases.length > 0) {
      // A value released by one contact and claimed by another in this batch (its old entry went before the claim)
      // is deleted as its own pair: in the set form below, the new owner may be another release's contact.
      const claimed = new Set(batch.claims.map((c) => entryId(c)));
      const released = batch.releases.map((r) => ({ _id: entryId(r.key), contactId: r.contactId }));
      cleanups.push(this.deleteEntries(released.filter((r) => !claimed.has(r._id))));
      for (const moved of released.filter((r) => claimed.has(r._id))) cleanups.push(this.entries.deleteOne(moved));
    }
    const superseded = batch.updates.flatMap(({ contact, expectedVersion }) =>
      versionsBetween(expectedVersion, contact.version - 1).map(
        (v) => `${docId(contact.tenantId, contact.contactId)}#${v}`,
      ),
    );
    if (superseded.length > 0) cleanups.push(this.writes.deleteMany({ _id: { $in: superseded } }));
    // Leftovers are harmless (stale entries are ignored by lookups, old version claims are never asked for again).
    await Promise.all(cleanups.map((p) => p.catch(() => undefined)));
    return true;
  }

  /**
   * Deletes entries still owned by the given contacts, in one statement. Both conditions are sets, which equals the
   * per-entry pairs here: each value appears once in the list, none moves between two of the batch's contacts (the
   * caller deletes those pair by pair), and the contacts involved are the batch's own (new ids, or existing ones whose
   * versions it holds), so none of them can own another's value meanwhile.
   */
  private async deleteEntries(entries: readonly { _id: string; contactId: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.entries.deleteMany({
      _id: { $in: entries.map((e) => e._id) },
      contactId: { $in: [...new Set(entries.map((e) => e.contactId))] },
    });
  }

  /** Claims the batch's index values and update versions; on any loss, undoes its own claims and returns false. */
  private async reserve(batch: ContactWriteBatch): Promise<boolean> {
    const claims = batch.claims.map(entryDoc);
    const taken = await insertAll(this.entries, claims);
    let lost = false;
    if (taken.size > 0) {
      // Already ours (left by an earlier try of the same contact) counts as claimed; anyone else's is a lost race.
      const owners = new Map(
        (await this.entries.find({ _id: { $in: [...taken].map((i) => claims[i]!._id) } }).toArray()).map((d) => [
          d._id,
          d.contactId,
        ]),
      );
      lost = [...taken].some((i) => owners.get(claims[i]!._id) !== claims[i]!.contactId);
    }
    const versionClaims: WriteClaimDoc[] = [];
    if (!lost) {
      const at = new Date();
      for (const { contact, expectedVersion } of batch.updates) {
        for (const v of versionsBetween(expectedVersion + 1, contact.version)) {
          versionClaims.push({ _id: `${docId(contact.tenantId, contact.contactId)}#${v}`, at });
        }
      }
      const held = await insertAll(this.writes, versionClaims);
      lost = held.size > 0;
      if (lost) versionClaims.splice(0, versionClaims.length, ...versionClaims.filter((_, i) => !held.has(i)));
    }
    if (!lost) return true;
    const mine = claims.filter((_, i) => !taken.has(i));
    await Promise.all([
      this.deleteEntries(mine),
      versionClaims.length > 0 ? this.writes.deleteMany({ _id: { $in: versionClaims.map((c) => c._id) } }) : undefined,
    ]);
    return false;
  }
}

function entryDoc(e: IndexEntry): EntryDoc {
  return {
    _id: entryId(e),
    tenantId: e.tenantId,
    fieldKind: e.fieldKind,
    keyVersion: e.keyVersion,
    normVersion: e.normVersion,
    value: e.value,
    contactId: e.contactId,
    claimedAt: e.claimedAt,
  };
}

function versionsBetween(from: number, to: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v++) out.push(v);
  return out;
}
