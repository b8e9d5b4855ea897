import {
  MongoOutboxSource,
  toOutboxEntry,
  withPendingEvent,
  type EventEnvelope,
  type OutboxSource,
} from '@sealpost/bus';
import type { BlindIndex } from '@sealpost/crypto';
import { Binary, type Collection, type Db } from 'mongodb';
import {
  ContactExistsError,
  type ContactPage,
  type ContactRepository,
  type StoredContact,
  type Tombstone,
} from '../../ports/contact-repository';
import { CONTACTS, CONTACT_WRITES, isDuplicateKey } from './mongo-contact-store';

export interface ContactDoc {
  _id: string;
  tenantId: string;
  contactId: string;
  version: number;
  record: Binary;
  fieldKinds: string[];
  indexes: BlindIndex[];
  createdAt: Date;
  updatedAt: Date;
  lastActivityAt: Date;
  erasureId?: string;
  erasedAt?: Date;
  outbox?: unknown[];
}

export interface WriteClaimDoc {
  _id: string;
  at: Date;
}

/** A write claim older than this, for a version never written, is from a crashed writer and may be taken over. */
const STALE_WRITE_CLAIM_MS = 30_000;

export function docId(tenantId: string, contactId: string): string {
  return `${tenantId}/${contactId}`;
}

function fromDoc(doc: ContactDoc): StoredContact {
  return {
    tenantId: doc.tenantId,
    contactId: doc.contactId,
    version: doc.version,
    record: new Uint8Array(doc.record.buffer),
    fieldKinds: doc.fieldKinds,
    indexes: doc.indexes.map((i) => ({
      fieldKind: i.fieldKind,
      keyVersion: i.keyVersion,
      normVersion: i.normVersion,
      value: i.value,
    })),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    lastActivityAt: doc.lastActivityAt,
  };
}

/**
 * `ContactRepository` on MongoDB. The pending event goes into the same single-document write (`outbox` array).
 *
 * Updates first claim the target version by inserting `<tenant>/<contact>#<version>` into `contact_writes`: FerretDB
 * v1 applies a filtered updateOne as read-then-write, and a probe saw 20 concurrent `{version: 1}` updates all
 * "succeed" with pushed events lost. A unique `_id` insert is atomic on every server, so only one writer per
 * version proceeds. The claim of the previous version is removed once the next one is written.
 */
export class MongoContactRepository implements ContactRepository {
  private readonly contacts: Collection<ContactDoc>;
  private readonly writes: Collection<WriteClaimDoc>;

  constructor(db: Db) {
    this.contacts = db.collection<ContactDoc>(CONTACTS);
    this.writes = db.collection<WriteClaimDoc>(CONTACT_WRITES);
  }

  async get(tenantId: string, contactId: string): Promise<StoredContact | undefined> {
    const doc = await this.contacts.findOne({ _id: docId(tenantId, contactId), tenantId });
    return doc && doc.erasedAt === undefined ? fromDoc(doc) : undefined;
  }

  async getMany(tenantId: string, contactIds: readonly string[]): Promise<StoredContact[]> {
    if (contactIds.length === 0) return [];
    const docs = await this.contacts
      .find(
        { _id: { $in: [...new Set(contactIds)].map((id) => docId(tenantId, id)) }, tenantId },
        { projection: { outbox: 0 } },
      )
      .toArray();
    return docs.filter((doc) => doc.erasedAt === undefined).map(fromDoc);
  }

  async erase(
    tenantId: string,
    contactId: string,
    expectedVersion: number,
    tombstone: Tombstone,
    event: EventEnvelope,
  ): Promise<boolean> {
    const id = docId(tenantId, contactId);
    if (!(await this.claimVersion(id, expectedVersion + 1))) return false;
    // The tombstone replaces the record and indexes but keeps the document, so its pending events survive.
    const result = await this.contacts.updateOne(
      { _id: id, tenantId, version: expectedVersion, erasedAt: { $exists: false } },
      withPendingEvent<ContactDoc>(
        {
          $set: {
            version: expectedVersion + 1,
            record: new Binary(Buffer.alloc(0)),
            fieldKinds: [],
            indexes: [],
            erasureId: tombstone.erasureId,
            erasedAt: tombstone.erasedAt,
            updatedAt: tombstone.erasedAt,
          },
        },
        event,
      ),
    );
    if (result.matchedCount !== 1) return false;
    await this.writes.deleteOne({ _id: `${id}#${expectedVersion}` }).catch(() => undefined);
    return true;
  }

  async tombstone(tenantId: string, contactId: string): Promise<Tombstone | undefined> {
    const doc = await this.contacts.findOne(
      { _id: docId(tenantId, contactId), tenantId },
      { projection: { erasureId: 1, erasedAt: 1 } },
    );
    return doc?.erasedAt !== undefined && doc.erasureId !== undefined
      ? { erasureId: doc.erasureId, erasedAt: doc.erasedAt }
      : undefined;
  }

  async replaceIndexes(
    tenantId: string,
    contactId: string,
    version: number,
    indexes: readonly BlindIndex[],
  ): Promise<boolean> {
    // TODO(FerretDB v1): a filtered update is read-then-write there, so a concurrent upsert of the same contact can
    // interleave; the re-index job re-checks every contact in a verification pass before retiring the old version.
    const result = await this.contacts.updateOne(
      { _id: docId(tenantId, contactId), tenantId, version, erasedAt: { $exists: false } },
      { $set: { indexes: indexes.map((i) => ({ ...i })) } },
    );
    return result.matchedCount === 1;
  }

  async listInactive(tenantId: string, before: Date, limit: number): Promise<StoredContact[]> {
    const docs = await this.contacts
      .find({ tenantId, lastActivityAt: { $lt: before }, erasedAt: { $exists: false } }, { projection: { outbox: 0 } })
      .sort({ lastActivityAt: 1 })
      .limit(limit)
      .toArray();
    return docs.map(fromDoc);
  }

  async create(contact: StoredContact, event: EventEnvelope): Promise<void> {
    try {
      await this.contacts.insertOne({ ...toDoc(contact), outbox: [toOutboxEntry(event)] });
    } catch (err) {
      if (isDuplicateKey(err)) throw new ContactExistsError('a contact with this id exists', { cause: err });
      throw err;
    }
  }

  async update(contact: StoredContact, expectedVersion: number, event: EventEnvelope): Promise<boolean> {
    const id = docId(contact.tenantId, contact.contactId);
    if (!(await this.claimVersion(id, contact.version))) return false;
    const { _id: _ignored, ...fields } = toDoc(contact);
    const result = await this.contacts.updateOne(
      { _id: id, tenantId: contact.tenantId, version: expectedVersion },
      withPendingEvent<ContactDoc>({ $set: fields }, event),
    );
    if (result.matchedCount !== 1) return false;
    await this.writes.deleteOne({ _id: `${id}#${expectedVersion}` }).catch(() => undefined);
    return true;
  }

  async list(tenantId: string, options: { pageSize: number; after?: string }): Promise<ContactPage> {
    const docs = await this.contacts
      .find(
        { tenantId, contactId: { $gt: options.after ?? '' }, erasedAt: { $exists: false } },
        { projection: { outbox: 0 } },
      )
      .sort({ contactId: 1 })
      .limit(options.pageSize + 1)
      .toArray();
    const contacts = docs.slice(0, options.pageSize).map(fromDoc);
    const last = contacts[contacts.length - 1];
    return docs.length > options.pageSize && last ? { contacts, nextAfter: last.contactId } : { contacts };
  }

  outbox(): OutboxSource<unknown> {
    return new MongoOutboxSource(this.contacts as unknown as Collection);
  }

  /** Claims the right to write `version`; false when another writer holds it. */
  private async claimVersion(id: string, version: number): Promise<boolean> {
    const claimId = `${id}#${version}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.writes.insertOne({ _id: claimId, at: new Date() });
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      // Taken. If the claim is old and the contact still sits below that version, its writer crashed: take over.
      const claim = await this.writes.findOne({ _id: claimId });
      if (!claim || Date.now() - claim.at.getTime() < STALE_WRITE_CLAIM_MS) return false;
      const doc = await this.contacts.findOne({ _id: id }, { projection: { version: 1 } });
      if (!doc || doc.version >= version) return false;
      await this.writes.deleteOne({ _id: claimId, at: claim.at });
    }
    return false;
  }
}

export function toDoc(c: StoredContact): ContactDoc {
  return {
    _id: docId(c.tenantId, c.contactId),
    tenantId: c.tenantId,
    contactId: c.contactId,
    version: c.version,
    record: new Binary(Buffer.from(c.record)),
    fieldKinds: [...c.fieldKinds],
    indexes: c.indexes.map((i) => ({ ...i })),
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    lastActivityAt: c.lastActivityAt,
  };
}
