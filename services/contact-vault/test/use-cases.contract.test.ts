/**
 * The vault's use cases over both stores (SQLite and MongoDB/FerretDB) with a local keyring and the embedded bus:
 * nothing personal at rest or on the bus, dedupe under concurrency, conflicts, bad input, masked reads, audited
 * find, idempotent import.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  EmbeddedBus,
  OutboxRelay,
  newEventId,
  type EventBatchPublisher,
  type ReceivedEvent,
  type ServiceBus,
} from '@sealpost/bus';
import { auditEventsV1, eventsV1 } from '@sealpost/proto';
import { ContactCipher, unwrapDataKey, type NormalizedPhone } from '@sealpost/crypto';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { BusAuditPublisher } from '../src/adapters/bus/bus-audit-publisher';
import { findContacts } from '../src/app/find-contacts';
import { getContact } from '../src/app/get-contact';
import { importContacts, type ImportOptions, type ImportRow, type ImportRowResult } from '../src/app/import-contacts';
import { WorkerRowPreparer } from '../src/adapters/worker/worker-row-preparer';
import type { ImportRowPreparer, PrepareKeys } from '../src/ports/import-row-preparer';
import { listContacts } from '../src/app/list-contacts';
import { revealContact } from '../src/app/reveal-contact';
import { upsertContact } from '../src/app/upsert-contact';
import { VaultError, indexesOf, normalizeFields } from '../src/domain';
import { indexKeyOf } from '../src/app/vault-deps';
import type { AuditPublisher } from '../src/ports/audit-publisher';
import type { ContactWriteBatch, ImportBatchWriter } from '../src/ports/import-batch-writer';
import { SqliteImportBatchWriter } from '../src/adapters/sqlite/sqlite-import-batch-writer';
import type { VaultDeps } from '../src/app/vault-deps';
import { canaries, findForbidden, forbiddenForms } from './support/canaries';
import { mongoVault, sqliteVault, type VaultCtx } from './support/vault-stores';

const T1 = 't-acme';
const T2 = 't-globex';
const T3 = 't-initech';
const OPERATOR = { kind: 'operator' as const, id: 'op-17' };

interface Ctx extends VaultCtx {
  readonly dir: string;
  readonly shared: EmbeddedBus;
  readonly vaultBus: ServiceBus;
  readonly audit: AuditPublisher;
  /** Publishes every pending outbox event through the relay (as the service does under its lease). */
  relayAll(): Promise<number>;
  /** Every event on the bus so far, read as a consumer would (the anomaly service's grant covers vault). */
  busEvents(domain: 'vault' | 'audit', expected: number): Promise<ReceivedEvent[]>;
  /** The raw bytes of the bus file(s). */
  busDump(): Buffer;
}

async function withBus(vault: VaultCtx): Promise<Ctx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-bus-'));
  const shared = EmbeddedBus.open(path.join(dir, 'bus.sqlite'), { pollIntervalMs: 20 });
  const vaultBus = shared.forService('contact-vault');
  await vaultBus.ensureStreams();
  // The audit stream belongs to the audit service; it exists before the vault publishes audit events.
  const auditBus = shared.forService('audit');
  await auditBus.ensureStreams();
  await auditBus.close();
  const relay = new OutboxRelay({
    source: vault.stores.contacts.outbox(),
    publisher: vaultBus,
    leases: vault.stores.leases,
    leaseName: 'outbox:contact-vault:contacts',
    holder: `test-${process.pid}`,
  });
  return {
    ...vault,
    dir,
    shared,
    vaultBus,
    audit: new BusAuditPublisher(vaultBus),
    async relayAll() {
      let total = 0;
      for (;;) {
        const pass = await relay.runOnce();
        total += pass.published + pass.duplicates;
        if (pass.published + pass.duplicates === 0) return total;
      }
    },
    async busEvents(domain, expected) {
      const reader = shared.forService(domain === 'vault' ? 'anomaly' : 'audit');
      const seen: ReceivedEvent[] = [];
      const sub = await reader.consume(
        { durable: `reader_${domain}_${Date.now()}`, domain, batch: 256 },
        (e) => void seen.push(e),
      );
      const until = Date.now() + 20_000;
      while (seen.length < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 100)); // anything beyond `expected` would show up now
      await sub.stop();
      await reader.close();
      return seen;
    },
    busDump() {
      return Buffer.concat(
        readdirSync(dir)
          .filter((f) => f.startsWith('bus.sqlite'))
          .map((f) => readFileSync(path.join(dir, f))),
      );
    },
    async close() {
      await relay.stop();
      await vaultBus.close();
      await shared.close();
      await vault.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function expectVaultError(promise: Promise<unknown>, code: string, field?: string): Promise<VaultError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  expect(err).toMatchObject({ code, ...(field !== undefined ? { field } : {}) });
  return err as VaultError;
}

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function* asRows(rows: ImportRow[]): AsyncGenerator<ImportRow> {
  for (const row of rows) yield row;
}

/** `deps` whose batch writer writes contacts through `write`, which is handed the real writer. */
function withBatchWrite(
  deps: VaultDeps,
  write: (batch: ContactWriteBatch, real: ImportBatchWriter) => Promise<boolean>,
): VaultDeps {
  const real = deps.importBatch!;
  const writer: ImportBatchWriter = {
    dataKeys: real.dataKeys,
    readDataKeys: real.readDataKeys?.bind(real),
    putDataKeys: (keys) => real.putDataKeys(keys),
    writeContacts: (batch) => write(batch, real),
  };
  return { ...deps, importBatch: writer };
}

/** The batch writer of `deps`, counting the batches it wrote nothing of (lost a race, redone row by row). */
function countingLosses(deps: VaultDeps): { deps: VaultDeps; lost: () => number } {
  let lost = 0;
  const counting = withBatchWrite(deps, async (batch, real) => {
    const written = await real.writeContacts(batch);
    if (!written) lost += 1;
    return written;
  });
  return { deps: counting, lost: () => lost };
}

/**
 * The worker as an import's row preparer, counting the drafts it sealed under KEK version 1; `afterBatch` runs once a
 * batch is prepared, before the import gets it.
 */
function countingDrafts(
  worker: WorkerRowPreparer,
  afterBatch: () => Promise<unknown> = async () => undefined,
): { preparer: ImportRowPreparer; drafts: () => number } {
  let drafts = 0;
  const preparer: ImportRowPreparer = {
    accepting: () => worker.accepting(),
    async prepareMany(requests, keys) {
      const results = await worker.prepareMany(requests, keys);
      drafts += results.filter((r) => r?.draft?.dataKey.kekVersion === 1).length;
      await afterBatch();
      return results;
    },
    close: () => worker.close(),
  };
  return { preparer, drafts: () => drafts };
}

/** The fields of a stored contact, opened with its data key as it is stored now. */
async function openStored(deps: VaultDeps, tenantId: string, contactId: string): Promise<Record<string, string>> {
  const stored = await deps.contacts.get(tenantId, contactId);
  if (!stored) throw new Error(`no stored contact ${contactId}`);
  return deps.cipher.open(tenantId, contactId, stored.record);
}

async function collect(gen: AsyncIterable<ImportRowResult>): Promise<ImportRowResult[]> {
  const out: ImportRowResult[] = [];
  for await (const r of gen) out.push(r);
  return out;
}

describeRepositoryContract<Ctx>(
  'contact-vault use cases',
  {
    sqlite: async (env) => withBus(await sqliteVault(env)),
    mongo: async (env) => withBus(await mongoVault(env)),
  },
  (ctx) => {
    it('stores and publishes none of 1,000 canary emails/phones/names, nor their unkeyed SHA-256', async () => {
      const people = canaries(1000);
      const name = (i: number): string => `Canaryname Person${String(i).padStart(3, '0')}`;
      await pool(
        people.map((p, i) => ({ p, i })),
        8,
        async ({ p, i }) => {
          const r = await upsertContact(ctx().deps, {
            tenantId: T1,
            fields: { email: p.rawEmail, phone: p.rawPhone, name: name(i) },
          });
          expect(r.created).toBe(true);
        },
      );
      // Some audited lookups, so audit events are on the bus too.
      for (const p of people.slice(0, 5)) {
        const found = await findContacts(
          { ...ctx().deps, audit: ctx().audit },
          { tenantId: T1, by: { field: 'email', value: p.rawEmail }, actor: OPERATOR },
        );
        expect(found.contacts).toHaveLength(1);
      }
      expect(await ctx().relayAll()).toBe(1000);

      const needles = forbiddenForms(people.flatMap((p, i) => [p.rawEmail, p.email, p.rawPhone, p.phone, name(i)]));
      expect(needles.length).toBeGreaterThan(10_000);
      expect(findForbidden(await ctx().dumpContactStore(), needles)).toEqual([]);
      expect(findForbidden(await ctx().dumpKeyStore(), needles)).toEqual([]);

      const events = await ctx().busEvents('vault', 1000);
      expect(events).toHaveLength(1000);
      const audits = await ctx().busEvents('audit', 5);
      expect(audits).toHaveLength(5);
      const published = Buffer.concat(
        [...events, ...audits].map((e) =>
          Buffer.concat([Buffer.from(e.subject + JSON.stringify(e.headers) + e.aggregateId), Buffer.from(e.payload)]),
        ),
      );
      expect(findForbidden(published, needles)).toEqual([]);
      expect(findForbidden(ctx().busDump(), needles)).toEqual([]);
      // The events say what changed without values: ids and field kinds.
      const first = eventsV1.ContactUpserted.decode(events[0]!.payload);
      expect(first).toMatchObject({ tenantId: T1, created: true, fieldKinds: ['email', 'name', 'phone'] });
      expect(events[0]).toMatchObject({ type: 'vault.contact.upserted', aggregateVersion: 1 });
    }, 240_000);

    it('turns 100 concurrent upserts of one email into one contact', async () => {
      const [p] = canaries(1, 'race');
      const results = await Promise.all(
        Array.from({ length: 100 }, () => upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.rawEmail } })),
      );
      const ids = new Set(results.map((r) => r.contactId));
      expect(ids.size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(results.every((r) => r.version === 1)).toBe(true);
      const counts = await ctx().counts();
      expect(counts).toMatchObject({ contacts: 1, index_entries: 1, outbox: 1, data_keys: 1 });
    }, 60_000);

    it('gives the same email different blind indexes in two tenants; stores no index key, KEK, suppression key or data key unwrapped', async () => {
      const [p] = canaries(1, 'twin');
      const a = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.rawEmail } });
      const b = await upsertContact(ctx().deps, { tenantId: T2, fields: { email: p!.rawEmail } });
      expect(a.contactId).not.toBe(b.contactId);
      const ia = (await ctx().stores.contacts.get(T1, a.contactId))!.indexes;
      const ib = (await ctx().stores.contacts.get(T2, b.contactId))!.indexes;
      expect(ia).toHaveLength(1);
      expect(ia[0]!.value).not.toBe(ib[0]!.value);

      const secrets: Buffer[] = [];
      for (const [t, contactId] of [
        [T1, a.contactId],
        [T2, b.contactId],
      ] as const) {
        const idx = await ctx().keys.currentIndexKeys(t);
        const kek = await ctx().keys.currentKek(t);
        secrets.push(idx.keys.email.export(), idx.keys.phone.export(), kek.key.export());
        secrets.push((await ctx().keys.suppressionKey(t)).key.export());
        // The contact's data key in plaintext, unwrapped here with the tenant's KEK.
        secrets.push(Buffer.from(unwrapDataKey(kek, contactId, (await ctx().stores.dataKeys.get(t, contactId))!).key));
      }
      const dumps = Buffer.concat([await ctx().dumpContactStore(), await ctx().dumpKeyStore()]);
      for (const secret of secrets) {
        expect(secret).toHaveLength(32);
        for (const form of [secret, Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('base64'))]) {
          expect(dumps.includes(form)).toBe(false);
        }
      }
      // The contact store holds no key material at all: not even the wrapped data keys live there.
      const wrapped = (await ctx().stores.dataKeys.get(T1, a.contactId))!.wrapped;
      expect((await ctx().dumpContactStore()).includes(Buffer.from(wrapped))).toBe(false);
      expect((await ctx().dumpKeyStore()).includes(Buffer.from(wrapped))).toBe(true);
    });

    it('refuses an email of one contact with the phone of another: conflict, nothing merged or written', async () => {
      const [pa, pb] = canaries(2, 'cfl');
      const a = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: pa!.rawEmail, phone: pa!.rawPhone } });
      const b = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: pb!.rawEmail, phone: pb!.rawPhone } });
      const before = await ctx().counts();
      const err = await expectVaultError(
        upsertContact(ctx().deps, { tenantId: T1, fields: { email: pa!.rawEmail, phone: pb!.rawPhone } }),
        'DEDUPE_CONFLICT',
        'phone',
      );
      expect(err.message).not.toContain('vault-canary');
      expect(err.message).not.toContain('7911');
      expect(await ctx().counts()).toEqual(before);
      const viewA = await getContact(ctx().deps, { tenantId: T1, contactId: a.contactId });
      const viewB = await getContact(ctx().deps, { tenantId: T1, contactId: b.contactId });
      expect([viewA.version, viewB.version]).toEqual([1, 1]);
      expect(viewA.masked.phone).toBe('+44 ******000');
      expect(viewB.masked.phone).toBe('+44 ******001');
      // A new email whose phone belongs to a contact with another email: also a conflict.
      await expectVaultError(
        upsertContact(ctx().deps, { tenantId: T1, fields: { email: 'someone.new@example.com', phone: pa!.rawPhone } }),
        'DEDUPE_CONFLICT',
        'phone',
      );
      expect(await ctx().counts()).toEqual(before);
    });

    it('refuses bad input with INVALID_ARGUMENT naming the field, never echoing it, writing nothing', async () => {
      const before = await ctx().counts();
      const cases: [string, Record<string, string>, string][] = [
        [T1, { email: 'not-an-email-secretvalue' }, 'email'],
        [T1, { email: 'secretvalue@@example.com' }, 'email'],
        [T1, { phone: '+44 12 secretvalue' }, 'phone'],
        [T1, { phone: '+1 555 0100 999 999 999' }, 'phone'],
        [T1, { email: `${'s'.repeat(2000)}secretvalue@example.com` }, 'email'],
        [T1, { email: 'ok@example.com', name: `secretvalue${'n'.repeat(300)}` }, 'name'],
        [T1, { email: 'ok@example.com', name: 'secretvalue\u0007' }, 'name'],
        [T1, { name: 'secretvalue only' }, 'fields'],
        ['t.acme', { email: 'ok@example.com' }, 'tenant_id'],
        ['t acme', { email: 'ok@example.com' }, 'tenant_id'],
        ['', { email: 'ok@example.com' }, 'tenant_id'],
        ['t'.repeat(65), { email: 'ok@example.com' }, 'tenant_id'],
      ];
      for (const [tenantId, fields, field] of cases) {
        const err = await expectVaultError(upsertContact(ctx().deps, { tenantId, fields }), 'INVALID_ARGUMENT', field);
        expect(err.message.startsWith(`${field}:`)).toBe(true);
        expect(err.message).not.toContain('secretvalue');
      }
      expect(await ctx().counts()).toEqual(before);
    });

    it('updates by merging, reports unchanged without writing, and masks reads', async () => {
      const [p] = canaries(1, 'upd');
      const first = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.rawEmail, name: 'Jane Doe' } });
      expect(first).toMatchObject({ created: true, changed: true, version: 1 });
      const again = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.email } });
      expect(again).toEqual({ contactId: first.contactId, created: false, changed: false, version: 1 });
      const withPhone = await upsertContact(ctx().deps, {
        tenantId: T1,
        fields: { email: p!.email, phone: p!.rawPhone },
      });
      expect(withPhone).toEqual({ contactId: first.contactId, created: false, changed: true, version: 2 });
      // Found by the phone alone now; the phone-only upsert is the same person.
      const byPhone = await upsertContact(ctx().deps, { tenantId: T1, fields: { phone: p!.phone } });
      expect(byPhone).toMatchObject({ contactId: first.contactId, changed: false, version: 2 });
      const view = await getContact(ctx().deps, { tenantId: T1, contactId: first.contactId });
      expect(view.masked).toEqual({ email: 'u***@v***.example', phone: '+44 ******000', name: 'J***' });
      expect(view.version).toBe(2);
      expect((await ctx().counts())['outbox']).toBe(2);
      await expectVaultError(getContact(ctx().deps, { tenantId: T2, contactId: first.contactId }), 'CONTACT_NOT_FOUND');
      await expectVaultError(
        getContact(ctx().deps, { tenantId: T1, contactId: 'jane@example.com' }),
        'INVALID_ARGUMENT',
        'contact_id',
      );
    });

    it('lists masked contacts page by page with tokens bound to the tenant', async () => {
      const people = canaries(5, 'lst');
      const ids: string[] = [];
      for (const p of people)
        ids.push((await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p.email } })).contactId);
      await upsertContact(ctx().deps, { tenantId: T2, fields: { email: people[0]!.email } });
      const seen: string[] = [];
      let token = '';
      do {
        const page = await listContacts(ctx().deps, {
          tenantId: T1,
          pageSize: 2,
          ...(token ? { pageToken: token } : {}),
        });
        expect(page.contacts.length).toBeLessThanOrEqual(2);
        for (const c of page.contacts) {
          expect(c.masked.email).toBe('l***@v***.example');
          seen.push(c.contactId);
        }
        if (page.nextPageToken) {
          await expectVaultError(
            listContacts(ctx().deps, { tenantId: T2, pageToken: page.nextPageToken }),
            'INVALID_ARGUMENT',
            'page.page_token',
          );
        }
        token = page.nextPageToken;
      } while (token);
      expect(seen).toEqual([...ids].sort());
      await expectVaultError(
        listContacts(ctx().deps, { tenantId: T1, pageSize: 5000 }),
        'INVALID_ARGUMENT',
        'page.page_size',
      );
    });

    it('finds through the blind index only, audited before answering; fails closed without audit', async () => {
      const [p] = canaries(1, 'fnd');
      const { contactId } = await upsertContact(ctx().deps, {
        tenantId: T1,
        fields: { email: p!.email, phone: p!.phone },
      });
      const deps = { ...ctx().deps, audit: ctx().audit };
      const byPhone = await findContacts(deps, {
        tenantId: T1,
        by: { field: 'phone', value: '+44 7911 000000' },
        actor: OPERATOR,
      });
      expect(byPhone.contacts.map((c) => c.contactId)).toEqual([contactId]);
      expect(byPhone.contacts[0]!.masked.email).toBe('f***@v***.example');
      const none = await findContacts(deps, { tenantId: T2, by: { field: 'email', value: p!.email }, actor: OPERATOR });
      expect(none.contacts).toEqual([]);

      const audits = await ctx().busEvents('audit', 2);
      expect(audits.map((e) => e.subject)).toEqual([
        `sealpost.audit.vault.${T1}.contact_find`,
        `sealpost.audit.vault.${T2}.contact_find`,
      ]);
      const payload = auditEventsV1.AuditEvent.decode(audits[0]!.payload);
      expect(payload).toMatchObject({
        eventId: audits[0]!.id,
        tenantId: T1,
        action: 'contact.find',
        actor: { $case: 'operatorId', value: 'op-17' },
        resourceIds: [contactId],
        outcome: 'granted',
      });
      expect(audits[0]!.id).toBe(byPhone.auditEventId);

      const down: AuditPublisher = {
        record: async () => {
          throw new VaultError('AUDIT_UNAVAILABLE', 'bus down');
        },
        publishEntry: async () => {
          throw new VaultError('AUDIT_UNAVAILABLE', 'bus down');
        },
      };
      await expectVaultError(
        findContacts(
          { ...ctx().deps, audit: down },
          { tenantId: T1, by: { field: 'email', value: p!.email }, actor: OPERATOR },
        ),
        'AUDIT_UNAVAILABLE',
      );
      await expectVaultError(
        findContacts(deps, { tenantId: T1, by: { field: 'email', value: 'nope-secretvalue' }, actor: OPERATOR }),
        'INVALID_ARGUMENT',
        'email',
      );
    });

    it('reveals only once its audit event and its vault.contact.revealed event are stored (ids only)', async () => {
      const [p] = canaries(1, 'rvl');
      const { contactId } = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.email } });
      const purpose = { code: 'support-request', ticket: 'OPS-42' };
      const deps = { ...ctx().deps, audit: ctx().audit };
      const revealed = await revealContact(deps, { tenantId: T1, contactId, actor: OPERATOR, purpose });
      expect(revealed.fields.email).toBe(p!.email);

      // The upsert's event is still in the outbox (not relayed here): the only vault event is the reveal's.
      const [event, ...more] = await ctx().busEvents('vault', 1);
      expect(more).toEqual([]);
      expect(event).toMatchObject({
        type: 'vault.contact.revealed',
        subject: `sealpost.vault.${T1}.contact_revealed`,
        aggregateVersion: 1,
      });
      // Its own aggregate: a reveal does not change the contact, so it must not compete with the contact's versions.
      expect(event!.aggregateId).not.toBe(contactId);
      expect(eventsV1.ContactRevealed.decode(event!.payload)).toMatchObject({
        tenantId: T1,
        contactId,
        actorId: OPERATOR.id,
        purposeCode: 'support-request',
      });
      expect(findForbidden(Buffer.from(event!.payload), forbiddenForms([p!.email]))).toEqual([]);
      const [audit] = await ctx().busEvents('audit', 1);
      expect(audit!.id).toBe(revealed.auditEventId);

      // With the bus gone, neither event can be stored: no plaintext.
      await ctx().vaultBus.close();
      await expectVaultError(
        revealContact(deps, { tenantId: T1, contactId, actor: OPERATOR, purpose }),
        'AUDIT_UNAVAILABLE',
      );
    });

    it('gives each grant a fresh audit event id, and treats a duplicate acknowledgement as a failure', async () => {
      const [p] = canaries(1, 'dup');
      const { contactId } = await upsertContact(ctx().deps, { tenantId: T1, fields: { email: p!.email } });
      const purpose = { code: 'support-request' };
      const reveal = (audit: AuditPublisher) =>
        revealContact({ ...ctx().deps, audit }, { tenantId: T1, contactId, actor: OPERATOR, purpose });
      const first = await reveal(ctx().audit);
      const second = await reveal(ctx().audit);
      expect(second.auditEventId).not.toBe(first.auditEventId);

      // Every audit event goes out under one id, so the real bus acknowledges the second as a duplicate: what it would
      // say of an id someone else had used. The grant is then not provably this one's, so nothing is returned.
      const reusedId = newEventId();
      const sameId: EventBatchPublisher = {
        publish: (envelope) => ctx().vaultBus.publish({ ...envelope, id: reusedId }),
        publishMany: (envelopes) =>
          ctx().vaultBus.publishMany(envelopes.map((e, i) => (i === 0 ? { ...e, id: reusedId } : e))),
      };
      const reusing = new BusAuditPublisher(sameId);
      await reveal(reusing);
      const refused = await expectVaultError(reveal(reusing), 'AUDIT_UNAVAILABLE');
      expect(refused.message).not.toContain(p!.email);
      await expectVaultError(
        findContacts(
          { ...ctx().deps, audit: reusing },
          { tenantId: T1, by: { field: 'email', value: p!.email }, actor: OPERATOR },
        ),
        'AUDIT_UNAVAILABLE',
      );
    });

    it('imports rows with a result each; re-running the same rows changes nothing', async () => {
      const people = canaries(6, 'imp');
      const rows: ImportRow[] = [
        ...people.map((p, i) => ({
          tenantId: T1,
          row: String(i + 1),
          fields: { email: p.rawEmail, phone: p.rawPhone },
        })),
        { tenantId: T1, row: '7', fields: { email: people[0]!.email } }, // duplicate of row 1
        { tenantId: T1, row: '8', fields: { email: 'bad-secretvalue' } },
        { tenantId: T1, row: '9', fields: { email: people[1]!.email, phone: people[2]!.rawPhone } },
        { tenantId: 't.bad', row: '10', fields: { email: 'x@example.com' } },
      ];
      const first = await collect(importContacts(ctx().deps, asRows(rows)));
      expect(first.map((r) => [r.row, r.result, r.reason, r.field])).toEqual([
        ...people.map((_, i) => [String(i + 1), 'created', '', '']),
        ['7', 'unchanged', '', ''],
        ['8', 'rejected', 'INVALID_ARGUMENT', 'email'],
        ['9', 'rejected', 'DEDUPE_CONFLICT', 'phone'],
        ['10', 'rejected', 'INVALID_ARGUMENT', 'tenant_id'],
      ]);
      expect(first[6]!.contactId).toBe(first[0]!.contactId);
      expect(JSON.stringify(first)).not.toContain('secretvalue');
      const after = await ctx().counts();
      const second = await collect(importContacts(ctx().deps, asRows(rows)));
      expect(second.map((r) => r.result)).toEqual([
        ...people.map(() => 'unchanged'),
        'unchanged',
        'rejected',
        'rejected',
        'rejected',
      ]);
      expect(second.map((r) => r.contactId)).toEqual(first.map((r) => r.contactId));
      expect(await ctx().counts()).toEqual(after);
    });
    it('imports in batches exactly as row by row: dedupe, merges, released values and conflicts inside a batch', async () => {
      const batches: [string, string, string][][] = [
        [
          ['ann@example.com', '+447911000001', ''], // created A
          ['bob@example.com', '', ''], // created B
          ['ANN@example.com', '', 'Ann'], // updated A (name)
          ['bob@example.com', '+447911000001', ''], // conflict: A's phone
          ['cat@example.com', '+447911000002', ''], // created C
          ['cat@example.com', '+447911000003', ''], // updated C: phone 2 released inside the batch
          ['dan@example.com', '+447911000002', ''], // created D on the released phone
          ['ann@example.com', '', 'Ann'], // unchanged
          ['not-an-email', '', ''], // rejected
          ['eve@example.com', '+447911000003', ''], // conflict: C's phone
        ],
        [
          ['cat@example.com', '+447911000004', ''], // updated C: stored phone 3 released
          ['fay@example.com', '+447911000003', ''], // created F on it
          ['bob@example.com', '', 'Bob'], // updated B
        ],
      ];
      const run = async (tenantId: string, deps: VaultDeps, options: ImportOptions = {}) => {
        const out: ImportRowResult[][] = [];
        for (const rows of batches) {
          const input = rows.map(([email, phone, name], i) => ({
            tenantId,
            row: String(i + 2),
            fields: { email, phone, name },
          }));
          out.push(await collect(importContacts(deps, asRows(input), options)));
        }
        // A second run of everything changes nothing.
        for (const rows of batches) {
          const input = rows.map(([email, phone, name], i) => ({
            tenantId,
            row: String(i + 2),
            fields: { email, phone, name },
          }));
          out.push(await collect(importContacts(deps, asRows(input), options)));
        }
        const ids = new Map<string, string>();
        const shape = out.map((results) =>
          results.map((r) => {
            if (r.contactId !== '' && !ids.has(r.contactId)) ids.set(r.contactId, `c${ids.size}`);
            return [r.row, r.result, r.reason, r.field, r.contactId === '' ? '' : ids.get(r.contactId)];
          }),
        );
        const listed = await listContacts(deps, { tenantId, pageSize: 50 });
        const versions = listed.contacts.map((c) => [ids.get(c.contactId), c.version, c.masked]).sort();
        return { shape, versions };
      };
      const batched = await run(T1, ctx().deps);
      const { importBatch: _batchWriter, ...rowDeps } = ctx().deps;
      const rowByRow = await run(T2, rowDeps);
      expect(batched).toEqual(rowByRow);
      // Prepared on a worker thread, one batch ahead (batches of 3, so later rows are normalised, indexed and sealed
      // before earlier ones are written): the same results, rejections included, and every contact readable (the
      // listing opens each record). Contacts created by one row are written as the worker sealed them.
      const worker = new WorkerRowPreparer();
      expect(await worker.whenReady()).toBe(true);
      const drafted = new Map<string, Uint8Array>();
      const rowPreparer: ImportRowPreparer = {
        accepting: () => worker.accepting(),
        async prepareMany(requests, keys) {
          const results = await worker.prepareMany(requests, keys);
          for (const r of results) if (r?.draft) drafted.set(r.draft.contactId, r.draft.record);
          return results;
        },
        close: () => worker.close(),
      };
      try {
        expect(await run(T3, { ...ctx().deps, rowPreparer }, { batchSize: 3 })).toEqual(rowByRow);
      } finally {
        await worker.close();
      }
      const createdByOneRow = (await listContacts(ctx().deps, { tenantId: T3, pageSize: 50 })).contacts.filter(
        (c) => c.version === 1,
      );
      const stored = await ctx().deps.contacts.getMany(
        T3,
        createdByOneRow.map((c) => c.contactId),
      );
      // On MongoDB the batch that moves a phone from one contact to another goes row by row (claims come first there).
      const adopted = stored.filter((c) => drafted.has(c.contactId)).length;
      if (ctx().deps.importBatch instanceof SqliteImportBatchWriter) expect(adopted).toBe(stored.length);
      else expect(adopted).toBe(stored.length - 1);
      for (const c of stored.filter((c) => drafted.has(c.contactId)))
        expect(Buffer.from(c.record)).toEqual(Buffer.from(drafted.get(c.contactId)!));
      expect(batched.shape[0]!.map((r) => r[1])).toEqual([
        'created',
        'created',
        'updated',
        'rejected',
        'created',
        'updated',
        'created',
        'unchanged',
        'rejected',
        'rejected',
      ]);
      expect(batched.shape[1]!.map((r) => r[1])).toEqual(['updated', 'created', 'updated']);
      expect(
        batched.shape
          .slice(2)
          .flat()
          .map((r) => r[1]),
      ).not.toContain('created');
      expect(
        batched.shape
          .slice(2)
          .flat()
          .map((r) => r[1]),
      ).not.toContain('updated');
    });
    it('hands the worker a KEK only with a use left for every row; otherwise the batch seals in line', async () => {
      const rows = (names: string[]) =>
        names.map((n, i) => ({ tenantId: T1, row: String(i + 2), fields: { email: `${n}@example.com` } }));
      const given: (PrepareKeys | undefined)[] = [];
      const worker = new WorkerRowPreparer();
      expect(await worker.whenReady()).toBe(true);
      const rowPreparer: ImportRowPreparer = {
        accepting: () => worker.accepting(),
        prepareMany: (requests, keys) => {
          given.push(keys);
          return worker.prepareMany(requests, keys);
        },
        close: () => worker.close(),
      };
      try {
        // 10 uses per cached KEK: one was spent loading it, so a batch of 10 rows cannot have one each.
        const keys = ctx().keysWith({ maxUses: 10 });
        const deps = {
          ...ctx().deps,
          keys,
          cipher: new ContactCipher({ keys, dataKeys: ctx().stores.dataKeys }),
          rowPreparer,
        };
        await keys.currentKek(T1);
        const ten = 'abcdefghij'.split('');
        const first = await collect(importContacts(deps, asRows(rows(ten))));
        expect(given).toEqual([undefined]);
        expect(first.map((r) => r.result)).toEqual(ten.map(() => 'created'));
        // A fresh window with room: the same-sized batch goes to the worker with its keys, 10 uses counted.
        const roomy = ctx().keysWith({ maxUses: 100 });
        const roomyDeps = {
          ...deps,
          keys: roomy,
          cipher: new ContactCipher({ keys: roomy, dataKeys: ctx().stores.dataKeys }),
        };
        const next = await collect(importContacts(roomyDeps, asRows(rows(ten.map((n) => `${n}2`)))));
        expect(given[1]?.kek.tenantId).toBe(T1);
        // One use to load it, ten reserved, none in line: 89 left, not 90.
        expect(roomy.reserveCurrentKek(T1, 90)).toBeUndefined();
        expect(roomy.reserveCurrentKek(T1, 89)).toBeDefined();
        expect(next.map((r) => r.result)).toEqual(ten.map(() => 'created'));
        const listed = await listContacts(roomyDeps, { tenantId: T1, pageSize: 50 });
        expect(listed.contacts).toHaveLength(20);
      } finally {
        await worker.close();
      }
    });

    it('seals in line instead of keeping a draft made under a KEK that a rotation replaced before the write', async () => {
      const worker = new WorkerRowPreparer();
      expect(await worker.whenReady()).toBe(true);
      const rotating = countingDrafts(worker, () => ctx().keys.rotateKek(T1));
      try {
        await ctx().keys.currentKek(T1);
        const rows = ['ann', 'bob'].map((n, i) => ({
          tenantId: T1,
          row: String(i + 2),
          fields: { email: `${n}@example.com` },
        }));
        const results = await collect(importContacts({ ...ctx().deps, rowPreparer: rotating.preparer }, asRows(rows)));
        expect(rotating.drafts()).toBe(2);
        for (const r of results) expect((await ctx().stores.dataKeys.get(T1, r.contactId))?.kekVersion).toBe(2);
      } finally {
        await worker.close();
      }
    });

    it('seals in line instead of keeping a draft when a rotation lands while the batch is being sealed', async () => {
      // The batch updates a stored contact, which comes first in the sealing order. Sealing it asks for its KEK, and
      // the test rotates right there, as another call could at any turn; the two contacts created after it must then
      // be sealed under version 2, not keep the worker's drafts made under version 1.
      await upsertContact(ctx().deps, { tenantId: T1, fields: { email: 'xena@example.com' } });
      const worker = new WorkerRowPreparer();
      expect(await worker.whenReady()).toBe(true);
      const counting = countingDrafts(worker);
      let kekLookups = 0;
      let rotated = false;
      const keys = new Proxy(ctx().keys, {
        get(target, name) {
          if (name === 'cachedKek') {
            return (tenantId: string, version: number) => {
              kekLookups += 1;
              // The first lookup opens the stored contact, before the rows are deduped; the second seals it.
              return kekLookups === 2 ? undefined : target.cachedKek(tenantId, version);
            };
          }
          if (name === 'kek') {
            return async (tenantId: string, version: number) => {
              if (!rotated) {
                rotated = true;
                await target.rotateKek(T1);
              }
              return target.kek(tenantId, version);
            };
          }
          const value: unknown = Reflect.get(target, name, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      try {
        await ctx().keys.currentKek(T1);
        const rows = [
          { email: 'xena@example.com', name: 'Xena' },
          { email: 'ann@example.com' },
          { email: 'bob@example.com' },
        ].map((fields, i) => ({ tenantId: T1, row: String(i + 2), fields }));
        const results = await collect(
          importContacts({ ...ctx().deps, keys, rowPreparer: counting.preparer }, asRows(rows)),
        );
        expect(results.map((r) => r.result)).toEqual(['updated', 'created', 'created']);
        expect(counting.drafts()).toBe(3);
        expect(rotated).toBe(true);
        for (const r of results.slice(1)) {
          expect((await ctx().stores.dataKeys.get(T1, r.contactId))?.kekVersion).toBe(2);
          expect(await openStored(ctx().deps, T1, r.contactId)).toHaveProperty('email');
        }
      } finally {
        await worker.close();
      }
    });

    it('after a batch write that failed part-way, keeps the keys of the contacts that landed', async () => {
      // A batch written in steps (MongoDB) can fail after some of its new contacts went in: the import stops with the
      // error, and the contacts already stored must still open.
      let created: string[] = [];
      const failing = withBatchWrite(ctx().deps, async (batch, real) => {
        created = batch.creates.map((c) => c.contact.contactId);
        // Ann's contact lands; Bob's does not.
        await real.writeContacts({ ...batch, claims: batch.claims.slice(0, 1), creates: batch.creates.slice(0, 1) });
        throw new Error('the connection dropped part-way through the batch');
      });
      const rows = ['ann', 'bob'].map((n, i) => ({
        tenantId: T1,
        row: String(i + 2),
        fields: { email: `${n}@example.com` },
      }));
      await expect(collect(importContacts(failing, asRows(rows)))).rejects.toThrow('the connection dropped');
      expect(created).toHaveLength(2);
      const [landed, lost] = created as [string, string];
      expect(await openStored(ctx().deps, T1, landed)).toEqual({ email: 'ann@example.com' });
      expect(await ctx().deps.contacts.get(T1, lost)).toBeUndefined();
    });

    it('drops the new keys of a batch whose write reports that nothing was written', async () => {
      let created: string[] = [];
      const losing = withBatchWrite(ctx().deps, async (batch) => {
        created = batch.creates.map((c) => c.contact.contactId);
        return false; // as after a lost race: the import then goes row by row
      });
      const rows = [{ tenantId: T1, row: '2', fields: { email: 'ann@example.com' } }];
      const [result] = await collect(importContacts(losing, asRows(rows)));
      expect(result?.result).toBe('created');
      expect(created).toHaveLength(1);
      expect(created[0]).not.toBe(result!.contactId);
      expect(await ctx().stores.dataKeys.get(T1, created[0]!)).toBeUndefined();
      expect(await ctx().stores.dataKeys.get(T1, result!.contactId)).toBeDefined();
    });

    it('releases a stored value its contact took back and dropped again within one batch', async () => {
      const phone = (n: number) => `+44791100001${n}`;
      const [a] = await collect(
        importContacts(
          ctx().deps,
          asRows([{ tenantId: T1, row: '1', fields: { email: 'a@example.com', phone: phone(0) } }]),
        ),
      );
      const steps: [string, string][] = [
        ['a@example.com', phone(2)], // A: its stored phone 0 released
        ['b@example.com', phone(0)], // B created on phone 0
        ['b@example.com', phone(3)], // B: phone 0 dropped again
        ['a@example.com', phone(0)], // A takes phone 0 back
        ['a@example.com', phone(4)], // A drops it again: the stored entry must go
      ];
      const counted = countingLosses(ctx().deps);
      const results = await collect(
        importContacts(
          counted.deps,
          asRows(steps.map(([email, p], i) => ({ tenantId: T1, row: String(i + 2), fields: { email, phone: p } }))),
        ),
      );
      expect(results.map((r) => r.result)).toEqual(['updated', 'created', 'updated', 'updated', 'updated']);
      expect(results[0]!.contactId).toBe(a!.contactId);
      const [index] = indexesOf([await ctx().keys.currentIndexKeys(T1)], { phone: phone(0) as NormalizedPhone });
      expect(await ctx().stores.indexEntries.find(indexKeyOf(T1, index!))).toBeUndefined();
      // Written as one batch (no value ends up moved, so MongoDB's claims do not collide either).
      expect(counted.lost()).toBe(0);
    });

    it('takes no keys for a helper that would not take the batch, and imports in line when the helper fails', async () => {
      const rows = (names: string[]) =>
        names.map((n, i) => ({ tenantId: T1, row: String(i + 2), fields: { email: `${n}@example.com` } }));
      const given: (PrepareKeys | undefined)[] = [];
      const idle: ImportRowPreparer = {
        accepting: () => false,
        prepareMany: async (requests, keys) => {
          given.push(keys);
          return requests.map(() => undefined);
        },
        close: async () => undefined,
      };
      const first = await collect(importContacts({ ...ctx().deps, rowPreparer: idle }, asRows(rows(['ann', 'bob']))));
      expect(given).toEqual([undefined]);
      const failing: ImportRowPreparer = {
        accepting: () => true,
        prepareMany: () => Promise.reject(new Error('could not clone')),
        close: async () => undefined,
      };
      const again = await collect(
        importContacts({ ...ctx().deps, rowPreparer: failing }, asRows(rows(['ann', 'bob', 'cat']))),
      );
      expect(again.map((r) => r.result)).toEqual(['unchanged', 'unchanged', 'created']);
      expect(again.slice(0, 2).map((r) => r.contactId)).toEqual(first.map((r) => r.contactId));
    });

    it('ignores indexes prepared ahead under another index version than the batch uses', async () => {
      const rows = ['ann', 'bob'].map((n, i) => ({
        tenantId: T1,
        row: String(i + 2),
        fields: { email: `${n}@example.com` },
      }));
      // Prepared under a version this batch does not use (a rotation came in between), every row carries the same
      // value: were they used, bob would be merged into ann.
      const stale: ImportRowPreparer = {
        accepting: () => true,
        prepareMany: async (requests) =>
          requests.map((r) => ({
            fields: normalizeFields(r.fields, r.policy),
            indexes: [{ fieldKind: 'email', keyVersion: 99, normVersion: 1, value: 'x'.repeat(43) }],
          })),
        close: async () => undefined,
      };
      const results = await collect(importContacts({ ...ctx().deps, rowPreparer: stale }, asRows(rows)));
      expect(results.map((r) => r.result)).toEqual(['created', 'created']);
      expect(results[0]!.contactId).not.toBe(results[1]!.contactId);
    });
    it('writes a batch that moves a phone from a stored contact to a new one in one go on SQLite', async () => {
      const row = (n: number, email: string, phone: string): ImportRow => ({
        tenantId: T1,
        row: String(n),
        fields: { email, phone },
      });
      const [cat] = await collect(importContacts(ctx().deps, asRows([row(2, 'cat@example.com', '+447911000003')])));
      const counted = countingLosses(ctx().deps);
      const results = await collect(
        importContacts(
          counted.deps,
          asRows([row(2, 'cat@example.com', '+447911000004'), row(3, 'fay@example.com', '+447911000003')]),
        ),
      );
      expect(results.map((r) => r.result)).toEqual(['updated', 'created']);
      expect(results[0]!.contactId).toBe(cat!.contactId);
      const byPhone = await findContacts(
        { ...ctx().deps, audit: ctx().audit },
        { tenantId: T1, by: { field: 'phone', value: '+447911000003' }, actor: OPERATOR },
      );
      expect(byPhone.contacts.map((c) => c.contactId)).toEqual([results[1]!.contactId]);
      // SQLite releases before it claims inside one transaction; MongoDB claims first, loses, and goes row by row.
      expect(counted.lost()).toBe(ctx().deps.importBatch instanceof SqliteImportBatchWriter ? 0 : 1);
    });

    it.each([
      ['with the default turns of the event loop', {}],
      ['with the event loop turning at every row (other calls run mid-batch)', { turnEveryMs: 0 }],
    ])(
      'keeps one contact per person when a batch races concurrent upserts of the same people, %s',
      async (_, options) => {
        const n = 60;
        const rows = Array.from({ length: n }, (_, i) => ({
          tenantId: T1,
          row: String(i + 2),
          fields: { email: `race${i}@example.com`, phone: `+4479112${String(i).padStart(5, '0')}` },
        }));
        const [results] = await Promise.all([
          collect(importContacts(ctx().deps, asRows(rows), options)),
          Promise.all(rows.map((r) => upsertContact(ctx().deps, { tenantId: T1, fields: { email: r.fields.email } }))),
        ]);
        expect(results.map((r) => r.result).filter((r) => r === 'rejected')).toEqual([]);
        const found = await Promise.all(
          rows.map((r) =>
            findContacts(
              { ...ctx().deps, audit: ctx().audit },
              { tenantId: T1, by: { field: 'email', value: r.fields.email }, actor: OPERATOR },
            ),
          ),
        );
        found.forEach((f, i) => {
          expect(f.contacts).toHaveLength(1);
          expect(f.contacts[0]!.contactId).toBe(results[i]!.contactId);
        });
        const listed = await listContacts(ctx().deps, { tenantId: T1, pageSize: 100 });
        expect(listed.contacts).toHaveLength(n);
      },
    );
  },
);
