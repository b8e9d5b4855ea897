/**
 * One contract suite for the vault's repository ports on SQLite and MongoDB (FerretDB in CI): contacts with their
 * outbox, index entries (uniqueness under concurrency), and the key-store adapters of crypto's TenantKeyStore and
 * DataKeyStore, which must behave like the in-memory reference implementations.
 */
import { createEnvelope, eventSubject, fromOutboxEntry } from '@sealpost/bus';
import {
  InMemoryDataKeyStore,
  InMemoryTenantKeyStore,
  type TenantKeyPurpose,
  type WrappedTenantKey,
} from '@sealpost/crypto';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { newContactId } from '../src/domain';
import { ContactExistsError, type StoredContact } from '../src/ports/contact-repository';
import type { IndexEntry } from '../src/ports/index-entry-repository';
import { mongoVault, sqliteVault, type VaultCtx } from './support/vault-stores';

const T1 = 't-one';
const T2 = 't-two';

function contact(tenantId: string, overrides: Partial<StoredContact> = {}): StoredContact {
  const at = new Date(Math.floor(Date.now() / 1000) * 1000);
  return {
    tenantId,
    contactId: newContactId(),
    version: 1,
    record: Uint8Array.from([1, 2, 3, 0, 255]),
    fieldKinds: ['email', 'phone'],
    indexes: [{ fieldKind: 'email', keyVersion: 1, normVersion: 1, value: 'A'.repeat(43) }],
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

function entry(contactId: string, overrides: Partial<IndexEntry> = {}): IndexEntry {
  return {
    tenantId: T1,
    fieldKind: 'email',
    keyVersion: 1,
    normVersion: 1,
    value: 'x'.repeat(43),
    contactId,
    claimedAt: new Date(1_700_000_000_000),
    ...overrides,
  };
}

async function pendingFor(ctx: VaultCtx, contactId: string): Promise<number[]> {
  const docs = await ctx.stores.contacts.outbox().listPending(1000);
  return docs.flatMap((d) => d.events.filter((e) => e.aggregateId === contactId).map((e) => e.aggregateVersion));
}

describeRepositoryContract<VaultCtx>(
  'contact-vault repositories',
  { sqlite: (env) => sqliteVault(env), mongo: (env) => mongoVault(env) },
  (ctx) => {
    describe('ContactRepository', () => {
      it('stores a contact with its pending event and reads it back only under its tenant', async () => {
        const c = contact(T1);
        await ctx().stores.contacts.create(c, event(c));
        expect(await ctx().stores.contacts.get(T1, c.contactId)).toEqual(c);
        expect(await ctx().stores.contacts.get(T2, c.contactId)).toBeUndefined();
        expect(await pendingFor(ctx(), c.contactId)).toEqual([1]);
      });

      it('refuses a second contact with the same id', async () => {
        const c = contact(T1);
        await ctx().stores.contacts.create(c, event(c));
        await expect(ctx().stores.contacts.create(c, event(c))).rejects.toBeInstanceOf(ContactExistsError);
        expect(await pendingFor(ctx(), c.contactId)).toEqual([1]);
      });

      it('updates only from the expected version, appending the event to the pending ones', async () => {
        const c = contact(T1);
        await ctx().stores.contacts.create(c, event(c));
        const v2 = { ...c, version: 2, record: Uint8Array.from([9]), fieldKinds: ['email'] };
        expect(await ctx().stores.contacts.update(v2, 1, event(v2))).toBe(true);
        expect(await ctx().stores.contacts.update({ ...v2, version: 2 }, 1, event(v2))).toBe(false);
        expect((await ctx().stores.contacts.get(T1, c.contactId))?.record).toEqual(Uint8Array.from([9]));
        expect(await pendingFor(ctx(), c.contactId)).toEqual([1, 2]);
        // Another tenant's write cannot reach it.
        const foreign = { ...v2, tenantId: T2, version: 3 };
        expect(await ctx().stores.contacts.update(foreign, 2, event(foreign))).toBe(false);
      });

      it('lets exactly one of 20 concurrent writers of the same version win, losing no event', async () => {
        const c = contact(T1);
        await ctx().stores.contacts.create(c, event(c));
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => {
            const next = { ...c, version: 2, record: Uint8Array.from([i]) };
            return ctx().stores.contacts.update(next, 1, event(next));
          }),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect((await ctx().stores.contacts.get(T1, c.contactId))?.record).toEqual(Uint8Array.from([winner]));
        expect(await pendingFor(ctx(), c.contactId)).toEqual([1, 2]);
        const v3 = { ...c, version: 3 };
        expect(await ctx().stores.contacts.update(v3, 2, event(v3))).toBe(true);
      });

      it('lists a tenant in id order, page by page, and never another tenant', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const c = contact(T1);
          ids.push(c.contactId);
          await ctx().stores.contacts.create(c, event(c));
        }
        const other = contact(T2);
        await ctx().stores.contacts.create(other, event(other));
        const seen: string[] = [];
        let after: string | undefined;
        for (let page = 0; page < 5; page++) {
          const p = await ctx().stores.contacts.list(T1, { pageSize: 2, ...(after ? { after } : {}) });
          seen.push(...p.contacts.map((x) => x.contactId));
          if (!p.nextAfter) break;
          after = p.nextAfter;
        }
        expect(seen).toEqual([...ids].sort());
      });

      it('gives the relay pending events that it removes one by id', async () => {
        const c = contact(T1);
        await ctx().stores.contacts.create(c, event(c));
        const v2 = { ...c, version: 2 };
        await ctx().stores.contacts.update(v2, 1, event(v2));
        const source = ctx().stores.contacts.outbox();
        const [doc] = (await source.listPending(10)).filter((d) => d.events[0]?.aggregateId === c.contactId);
        expect(doc?.events.map((e) => fromOutboxEntry(e).aggregateVersion)).toEqual([1, 2]);
        await source.removeEvent(doc!.key, doc!.events[0]!);
        expect(await pendingFor(ctx(), c.contactId)).toEqual([2]);
      });
    });

    describe('IndexEntryRepository', () => {
      it('claims a value once; others learn the owner; only the owner releases it', async () => {
        const repo = ctx().stores.indexEntries;
        expect(await repo.claim(entry('ct_a'))).toEqual({ claimed: true });
        expect(await repo.claim(entry('ct_a'))).toEqual({ claimed: true });
        const lost = await repo.claim(entry('ct_b'));
        expect(lost).toEqual({ claimed: false, owner: entry('ct_a') });
        expect(await repo.find(entry('x'))).toEqual(entry('ct_a'));
        expect(await repo.release(entry('x'), 'ct_b')).toBe(false);
        expect(await repo.release(entry('x'), 'ct_a')).toBe(true);
        expect(await repo.find(entry('x'))).toBeUndefined();
        expect(await repo.claim(entry('ct_b'))).toEqual({ claimed: true });
      });

      it('keeps tenants, field kinds, key versions and normalisation versions apart', async () => {
        const repo = ctx().stores.indexEntries;
        const variants: Partial<IndexEntry>[] = [
          {},
          { tenantId: T2 },
          { fieldKind: 'phone' },
          { keyVersion: 2 },
          { normVersion: 2 },
        ];
        for (const [i, v] of variants.entries()) {
          expect(await repo.claim(entry(`ct_${i}`, v))).toEqual({ claimed: true });
        }
        for (const [i, v] of variants.entries()) expect((await repo.find(entry('x', v)))?.contactId).toBe(`ct_${i}`);
      });

      it('finds many at once: exactly the entries that exist among the keys asked, across every dimension', async () => {
        const repo = ctx().stores.indexEntries;
        const stored: Partial<IndexEntry>[] = [
          { value: 'a'.repeat(43) },
          { value: 'b'.repeat(43), fieldKind: 'phone' },
          { value: 'c'.repeat(43), keyVersion: 2 },
          { value: 'd'.repeat(43), tenantId: T2 },
        ];
        for (const [i, v] of stored.entries()) await repo.claim(entry(`ct_${i}`, v));
        const asked: Partial<IndexEntry>[] = [
          ...stored,
          { value: 'a'.repeat(43), fieldKind: 'phone' }, // stored value, other kind
          { value: 'b'.repeat(43), normVersion: 2 }, // other normalisation version
          { value: 'c'.repeat(43) }, // other key version
          { value: 'd'.repeat(43) }, // other tenant
          { value: 'e'.repeat(43) }, // never stored
        ];
        const found = await repo.findMany(asked.map((v) => entry('ignored', v)));
        const byContact = (entries: IndexEntry[]) =>
          [...entries].sort((x, y) => x.contactId.localeCompare(y.contactId));
        expect(byContact(found)).toEqual(stored.map((v, i) => entry(`ct_${i}`, v)));
        expect(await repo.findMany([])).toEqual([]);
      });

      it('lets exactly one of 50 concurrent claimers own a value', async () => {
        const repo = ctx().stores.indexEntries;
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => repo.claim(entry(`ct_${i}`))));
        const winners = results.flatMap((r, i) => (r.claimed ? [`ct_${i}`] : []));
        expect(winners).toHaveLength(1);
        for (const r of results) if (!r.claimed) expect(r.owner.contactId).toBe(winners[0]);
      });
    });

    describe('ErasureRepository', () => {
      const ledgerEntry = (erasureId: string, tenantId = T1) => ({
        tenantId,
        contactId: `ct_${erasureId}`,
        erasureId,
        erasedAt: new Date(1_700_000_000_000),
      });

      it('keeps the ledger in erasure-id order across tenants, idempotent on the erasure id, paged', async () => {
        const repo = ctx().stores.erasures;
        for (const id of ['er_03', 'er_01', 'er_02'])
          await repo.appendLedger(ledgerEntry(id, id === 'er_02' ? T2 : T1));
        await repo.appendLedger(ledgerEntry('er_01'));
        expect(await repo.ledger({ limit: 10 })).toEqual([
          ledgerEntry('er_01'),
          ledgerEntry('er_02', T2),
          ledgerEntry('er_03'),
        ]);
        expect(await repo.ledger({ after: 'er_01', limit: 1 })).toEqual([ledgerEntry('er_02', T2)]);
        expect(await repo.ledger({ after: 'er_03', limit: 10 })).toEqual([]);
      });

      it('stores suppression tombstones once and finds them only under the same tenant, kind and version', async () => {
        const repo = ctx().stores.erasures;
        const t = {
          tenantId: T1,
          fieldKind: 'email' as const,
          normVersion: 1,
          value: 'S'.repeat(43),
          erasureId: 'er_1',
          createdAt: new Date(1_700_000_000_000),
        };
        await repo.putSuppression(t);
        await repo.putSuppression({ ...t, erasureId: 'er_2' });
        expect(await repo.isSuppressed(T1, 'email', 1, t.value)).toBe(true);
        expect(await repo.isSuppressed(T2, 'email', 1, t.value)).toBe(false);
        expect(await repo.isSuppressed(T1, 'phone', 1, t.value)).toBe(false);
        expect(await repo.isSuppressed(T1, 'email', 2, t.value)).toBe(false);
        expect(await repo.isSuppressed(T1, 'email', 1, 'T'.repeat(43))).toBe(false);
      });
    });

    describe('OperationRepository', () => {
      it('saves, replaces by id and reads back operations', async () => {
        const repo = ctx().stores.operations;
        const op = {
          operationId: 'op_1',
          kind: 'erase-contact' as const,
          tenantId: T1,
          done: false,
          progress: 0.25,
          result: '',
          errorReason: '',
          createdAt: new Date(1_700_000_000_000),
          updatedAt: new Date(1_700_000_000_000),
        };
        expect(await repo.get('op_1')).toBeUndefined();
        await repo.save(op);
        expect(await repo.get('op_1')).toEqual(op);
        const done = { ...op, done: true, progress: 1, result: 'a.b.c', updatedAt: new Date(1_700_000_001_000) };
        await repo.save(done);
        expect(await repo.get('op_1')).toEqual(done);
        await repo.save({ ...op, operationId: 'op_2', kind: 'rotate-tenant-key', tenantId: T2 });
        expect((await repo.get('op_2'))?.kind).toBe('rotate-tenant-key');
        expect(await repo.get('op_1')).toEqual(done);
      });

      it("keeps an erasure's fixed audit event with the operation, so a resumed erasure publishes the same one", async () => {
        const repo = ctx().stores.operations;
        const op = {
          operationId: 'op_audit',
          kind: 'erase-contact' as const,
          tenantId: T1,
          done: true,
          progress: 0.8,
          result: '',
          errorReason: 'AUDIT_UNAVAILABLE',
          createdAt: new Date(1_700_000_000_000),
          updatedAt: new Date(1_700_000_002_000),
          auditEvent: {
            eventId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
            occurredAt: 1_700_000_000_000,
            event: {
              tenantId: T1,
              action: 'contact.erase',
              actor: { kind: 'operator' as const, id: 'op-dpo-1' },
              resourceIds: ['ct_1', 'er_1'],
              purposeCode: 'subject-access',
              ticketRef: 'DPO-77',
              outcome: 'succeeded' as const,
            },
          },
        };
        await repo.save(op);
        expect(await repo.get('op_audit')).toEqual(op);
      });
    });

    describe('KeyInventory (key-store rewrap bookkeeping)', () => {
      const key = (id: string, kekVersion: number) => ({
        dataKeyId: id.padEnd(22, 'A'),
        kekVersion,
        wrapped: Uint8Array.from([kekVersion, 0, 1]),
      });

      it('lists and counts contacts by KEK version as data keys are rewrapped, paged in id order', async () => {
        const { dataKeys, inventory } = ctx().stores;
        for (const c of ['ct_3', 'ct_1', 'ct_2']) await dataKeys.put(T1, c, key(c, 1));
        await dataKeys.put(T2, 'ct_9', key('ct_9', 1));
        expect(await inventory.contactsUsingKek(T1, 1, { limit: 10 })).toEqual(['ct_1', 'ct_2', 'ct_3']);
        expect(await inventory.contactsUsingKek(T1, 1, { after: 'ct_1', limit: 1 })).toEqual(['ct_2']);
        expect(await dataKeys.rewrap(T1, 'ct_2', key('ct_2', 2))).toBe(true);
        expect(await inventory.contactsUsingKek(T1, 1, { limit: 10 })).toEqual(['ct_1', 'ct_3']);
        expect(await inventory.contactsUsingKek(T1, 2, { limit: 10 })).toEqual(['ct_2']);
        expect(await inventory.countUsingKek(T1, 1)).toBe(2);
        expect(await inventory.countUsingKek(T1, 2)).toBe(1);
        expect(await inventory.countDataKeys(T1)).toBe(3);
        expect(await inventory.countDataKeys(T2)).toBe(1);
        await dataKeys.delete(T1, 'ct_1');
        expect(await inventory.countUsingKek(T1, 1)).toBe(1);
      });

      it('retires versions per tenant and purpose, idempotently', async () => {
        const { inventory } = ctx().stores;
        expect(await inventory.retired(T1, 'kek')).toEqual([]);
        await inventory.retire(T1, 'kek', 1, new Date(1_700_000_000_000));
        await inventory.retire(T1, 'kek', 1, new Date(1_700_000_000_000));
        await inventory.retire(T1, 'index', 2, new Date(1_700_000_000_000));
        expect(await inventory.retired(T1, 'kek')).toEqual([1]);
        expect(await inventory.retired(T1, 'index')).toEqual([2]);
        expect(await inventory.retired(T2, 'kek')).toEqual([]);
      });
    });

    describe('key store adapters (same behaviour as the in-memory reference)', () => {
      const wrapped = (version: number, byte: number): WrappedTenantKey => ({
        tenantId: T1,
        purpose: 'kek',
        version,
        kmsKeyId: 'local/t-one',
        ciphertextBlob: Uint8Array.from([byte, 1, 2]),
        createdAt: new Date(1_700_000_000_000 + version),
      });

      it('TenantKeyStore: create-if-absent, get, latest', async () => {
        const reference = new InMemoryTenantKeyStore();
        const store = ctx().stores.tenantKeys;
        for (const s of [reference, store]) {
          expect(await s.latest(T1, 'kek')).toBeUndefined();
          expect(await s.insert(wrapped(1, 7))).toEqual(wrapped(1, 7));
          // A racing writer's different key loses: the stored one comes back.
          expect(await s.insert(wrapped(1, 8))).toEqual(wrapped(1, 7));
          await s.insert(wrapped(2, 9));
          await s.insert({ ...wrapped(5, 5), purpose: 'index' });
        }
        const queries: [string, TenantKeyPurpose, number][] = [
          [T1, 'kek', 1],
          [T1, 'kek', 3],
          [T1, 'index', 5],
          [T2, 'kek', 1],
        ];
        for (const [t, p, v] of queries) expect(await store.get(t, p, v)).toEqual(await reference.get(t, p, v));
        expect(await store.latest(T1, 'kek')).toEqual(await reference.latest(T1, 'kek'));
        expect(await store.latest(T1, 'index')).toEqual(await reference.latest(T1, 'index'));
        expect(await store.latest(T1, 'suppression')).toBeUndefined();
      });

      it('DataKeyStore: create-if-absent, rewrap only the same key, delete', async () => {
        const reference = new InMemoryDataKeyStore();
        const store = ctx().stores.dataKeys;
        const key = (id: string, kekVersion: number, byte: number) => ({
          dataKeyId: id,
          kekVersion,
          wrapped: Uint8Array.from([byte, 0, 1]),
        });
        const idA = 'AAAAAAAAAAAAAAAAAAAAAA';
        const idB = 'BBBBBBBBBBBBBBBBBBBBBA';
        for (const s of [reference, store]) {
          expect(await s.put(T1, 'ct_1', key(idA, 1, 1))).toEqual(key(idA, 1, 1));
          expect(await s.put(T1, 'ct_1', key(idB, 1, 2))).toEqual(key(idA, 1, 1));
          expect(await s.rewrap(T1, 'ct_1', key(idB, 2, 3))).toBe(false);
          expect(await s.rewrap(T1, 'ct_1', key(idA, 2, 4))).toBe(true);
          expect(await s.rewrap(T1, 'ct_missing', key(idA, 2, 4))).toBe(false);
          expect(await s.get(T2, 'ct_1')).toBeUndefined();
        }
        expect(await store.get(T1, 'ct_1')).toEqual(await reference.get(T1, 'ct_1'));
        expect(await store.delete(T1, 'ct_1')).toBe(true);
        expect(await store.delete(T1, 'ct_1')).toBe(false);
        expect(await store.get(T1, 'ct_1')).toBeUndefined();
      });
    });
  },
);
