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

      it('lets exactly one of 50 concurrent claimers own a value', async () => {
        const repo = ctx().stores.indexEntries;
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => repo.claim(entry(`ct_${i}`))));
        const winners = results.flatMap((r, i) => (r.claimed ? [`ct_${i}`] : []));
        expect(winners).toHaveLength(1);
        for (const r of results) if (!r.claimed) expect(r.owner.contactId).toBe(winners[0]);
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
