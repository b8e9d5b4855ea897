/**
 * The ImportBatchWriter port on SQLite (one transaction per store) and MongoDB/FerretDB (claims first, no
 * transaction): a batch is written whole with its pending events, or — when it lost a race for an index value or a
 * version — nothing of it stays and the writer says so, so the import redoes those rows one by one.
 */
import { createEnvelope, eventSubject, fromOutboxEntry } from '@sealpost/bus';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { newContactId } from '../src/domain';
import type { StoredContact } from '../src/ports/contact-repository';
import type { ImportBatchWriter } from '../src/ports/import-batch-writer';
import type { IndexEntry } from '../src/ports/index-entry-repository';
import { mongoVault, sqliteVault, type VaultCtx } from './support/vault-stores';

const T1 = 't-batch';
let serial = 0;

function value(): string {
  return `v${String(++serial).padStart(3, '0')}${'x'.repeat(39)}`;
}

function contact(overrides: Partial<StoredContact> = {}): StoredContact {
  const at = new Date(Math.floor(Date.now() / 1000) * 1000);
  return {
    tenantId: T1,
    contactId: newContactId(),
    version: 1,
    record: Uint8Array.from([7, 7, 7]),
    fieldKinds: ['email'],
    indexes: [{ fieldKind: 'email', keyVersion: 1, normVersion: 1, value: value() }],
    createdAt: at,
    updatedAt: at,
    lastActivityAt: at,
    ...overrides,
  };
}

function event(c: StoredContact) {
  return createEnvelope({
    type: 'vault.contact.upserted',
    subject: eventSubject('vault', c.tenantId, 'contact_upserted'),
    tenant: c.tenantId,
    aggregateId: c.contactId,
    aggregateVersion: c.version,
    payload: Uint8Array.from([c.version]),
  });
}

function claimOf(c: StoredContact, index = c.indexes[0]!): IndexEntry {
  return { tenantId: c.tenantId, ...index, contactId: c.contactId, claimedAt: c.createdAt };
}

async function pendingVersions(ctx: VaultCtx, contactId: string): Promise<number[]> {
  const docs = await ctx.stores.contacts.outbox().listPending(10_000);
  return docs.flatMap((d) =>
    d.events.filter((e) => e.aggregateId === contactId).map((e) => fromOutboxEntry(e).aggregateVersion),
  );
}

function writerOf(ctx: VaultCtx): ImportBatchWriter {
  const writer = ctx.stores.importBatch;
  if (!writer) throw new Error('this backend has no batch writer');
  return writer;
}

describeRepositoryContract<VaultCtx>(
  'contact-vault import batch writer',
  { sqlite: (env) => sqliteVault(env), mongo: (env) => mongoVault(env) },
  (ctx) => {
    it('writes new contacts, their claims, data keys and every pending event of the batch', async () => {
      const a = contact();
      const b = contact({ version: 2 }); // created then changed inside the batch: two events
      await writerOf(ctx()).putDataKeys(
        [a, b].map((c) => ({
          tenantId: T1,
          contactId: c.contactId,
          key: { dataKeyId: `dk-${c.contactId}`, kekVersion: 1, wrapped: Uint8Array.from([1, 2]) },
        })),
      );
      const written = await writerOf(ctx()).writeContacts({
        releases: [],
        claims: [claimOf(a), claimOf(b)],
        creates: [
          { contact: a, events: [event(a)] },
          { contact: b, events: [event({ ...b, version: 1 }), event(b)] },
        ],
        updates: [],
      });
      expect(written).toBe(true);
      expect(await ctx().stores.contacts.get(T1, a.contactId)).toMatchObject({ version: 1 });
      expect(await ctx().stores.contacts.get(T1, b.contactId)).toMatchObject({ version: 2 });
      expect((await ctx().stores.indexEntries.find(claimOf(b)))?.contactId).toBe(b.contactId);
      expect((await ctx().stores.dataKeys.get(T1, a.contactId))?.dataKeyId).toBe(`dk-${a.contactId}`);
      expect(await pendingVersions(ctx(), a.contactId)).toEqual([1]);
      expect(await pendingVersions(ctx(), b.contactId)).toEqual([1, 2]);
      expect(await ctx().stores.indexEntries.findMany([claimOf(a), claimOf(b), claimOf(contact())])).toHaveLength(2);
      const many = await ctx().stores.contacts.getMany(T1, [a.contactId, b.contactId, newContactId()]);
      expect(many.map((c) => c.contactId).sort()).toEqual([a.contactId, b.contactId].sort());
    });

    it('writes nothing and says so when another contact owns a value the batch claims', async () => {
      const owner = contact();
      await ctx().stores.indexEntries.claim(claimOf(owner));
      const fresh = contact();
      const clashing = contact({ indexes: owner.indexes });
      const counts = await ctx().counts();
      const written = await writerOf(ctx()).writeContacts({
        releases: [],
        claims: [claimOf(fresh), claimOf(clashing)],
        creates: [
          { contact: fresh, events: [event(fresh)] },
          { contact: clashing, events: [event(clashing)] },
        ],
        updates: [],
      });
      expect(written).toBe(false);
      // The batch's own claim is undone; the owner keeps its value.
      expect(await ctx().stores.indexEntries.find(claimOf(fresh))).toBeUndefined();
      expect((await ctx().stores.indexEntries.find(claimOf(owner)))?.contactId).toBe(owner.contactId);
      expect(await ctx().stores.contacts.get(T1, fresh.contactId)).toBeUndefined();
      expect(await ctx().counts()).toEqual(counts);
    });

    it("moves a value between two contacts of one batch: the old owner's entry goes, the new owner's stays", async () => {
      const a = contact();
      const b = contact();
      for (const c of [a, b]) {
        await ctx().stores.indexEntries.claim(claimOf(c));
        await ctx().stores.contacts.create(c, event(c));
      }
      // A's entry went before the batch claims its value (MongoDB claims first; with it still there, the batch loses).
      await ctx().stores.indexEntries.release(claimOf(a), a.contactId);
      const p = a.indexes[0]!;
      const b2 = { ...b, version: 2, indexes: [p] };
      const written = await writerOf(ctx()).writeContacts({
        releases: [
          { key: claimOf(a), contactId: a.contactId },
          { key: claimOf(b), contactId: b.contactId },
        ],
        claims: [claimOf(b2, p)],
        creates: [],
        updates: [{ contact: b2, expectedVersion: 1, events: [event(b2)] }],
      });
      expect(written).toBe(true);
      expect((await ctx().stores.indexEntries.find(claimOf(b2, p)))?.contactId).toBe(b.contactId);
      expect(await ctx().stores.indexEntries.find(claimOf(b))).toBeUndefined();
    });

    it('updates from the expected version, releases dropped values, and loses to a concurrent writer cleanly', async () => {
      const c = contact();
      await ctx().stores.indexEntries.claim(claimOf(c));
      await ctx().stores.contacts.create(c, event(c));
      const phone = { fieldKind: 'phone' as const, keyVersion: 1, normVersion: 1, value: value() };
      // Two steps inside one batch (v1 → v3): the email is replaced by a phone.
      const v3 = { ...c, version: 3, indexes: [phone], fieldKinds: ['phone'] };
      const written = await writerOf(ctx()).writeContacts({
        releases: [{ key: claimOf(c), contactId: c.contactId }],
        claims: [claimOf(v3, phone)],
        creates: [],
        updates: [{ contact: v3, expectedVersion: 1, events: [event({ ...v3, version: 2 }), event(v3)] }],
      });
      expect(written).toBe(true);
      expect(await ctx().stores.contacts.get(T1, c.contactId)).toMatchObject({ version: 3, indexes: [phone] });
      expect(await ctx().stores.indexEntries.find(claimOf(c))).toBeUndefined();
      expect((await ctx().stores.indexEntries.find(claimOf(v3, phone)))?.contactId).toBe(c.contactId);
      expect(await pendingVersions(ctx(), c.contactId)).toEqual([1, 2, 3]);

      // A row-by-row writer moves the contact to v4 first: the batch built on v3 writes nothing.
      const v4 = { ...v3, version: 4 };
      expect(await ctx().stores.contacts.update(v4, 3, event(v4))).toBe(true);
      const stale = contact();
      const lost = await writerOf(ctx()).writeContacts({
        releases: [],
        claims: [claimOf(stale)],
        creates: [{ contact: stale, events: [event(stale)] }],
        updates: [{ contact: { ...v3, version: 4, fieldKinds: ['email', 'phone'] }, expectedVersion: 3, events: [] }],
      });
      expect(lost).toBe(false);
      expect(await ctx().stores.contacts.get(T1, c.contactId)).toMatchObject({ version: 4, fieldKinds: ['phone'] });
      expect(await ctx().stores.contacts.get(T1, stale.contactId)).toBeUndefined();
      expect(await ctx().stores.indexEntries.find(claimOf(stale))).toBeUndefined();
      expect(await pendingVersions(ctx(), c.contactId)).toEqual([1, 2, 3, 4]);
    });
  },
);
