/**
 * Key rotation over both stores (SQLite and MongoDB/FerretDB) with a local keyring and the embedded bus: a change of
 * normalisation rules applied by an index rotation (re-normalised values, collisions reported and never merged,
 * lookups working throughout), fail-closed starts with the bus down and resumed rotations, one rotation per tenant
 * key at a time, and the key events relayed from the operations outbox with the tenant key's aggregate versions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedBus, OutboxRelay, newEventId, type ReceivedEvent, type ServiceBus } from '@sealpost/bus';
import { eventsV1 } from '@sealpost/proto';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { BusAuditPublisher } from '../src/adapters/bus/bus-audit-publisher';
import { StaticTenantPolicies } from '../src/adapters/static-tenant-policies';
import { findContacts } from '../src/app/find-contacts';
import { importContacts, type ImportRow } from '../src/app/import-contacts';
import { listContacts } from '../src/app/list-contacts';
import { openVerified } from '../src/app/open-verified';
import { rotationOperationId, startRotateTenantKey, type RotateDeps } from '../src/app/rotate-tenant-key';
import { upsertContact } from '../src/app/upsert-contact';
import { DEFAULT_TENANT_POLICY, VaultError } from '../src/domain';
import type { AuditPublisher } from '../src/ports/audit-publisher';
import { mongoVault, sqliteVault, type VaultCtx } from './support/vault-stores';

const T = 't-keys';
const ADMIN = { kind: 'operator' as const, id: 'op-admin-7' };
const PURPOSE = { code: 'legal-hold' };
const FOLDING = new StaticTenantPolicies({
  ...DEFAULT_TENANT_POLICY,
  normalization: { ...DEFAULT_TENANT_POLICY.normalization, foldEmailAliases: true },
});

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function* asRows(rows: readonly ImportRow[]): AsyncGenerator<ImportRow> {
  yield* rows;
}

interface Ctx extends VaultCtx {
  readonly shared: EmbeddedBus;
  /** The vault's bus connection; `busDown()` closes it, `busUp()` opens a new one. */
  bus: ServiceBus;
  /** The rotation deps over the current bus connection (`policies` as given). */
  rotateDeps(policies?: RotateDeps['policies']): RotateDeps & { audited: string[] };
  busDown(): Promise<void>;
  busUp(): Promise<void>;
  /** Relays the operations outbox (key events) as the service does; returns how many went out. */
  relayKeyEvents(): Promise<number>;
  /** Vault-domain events on the bus so far, read as a consumer would (the anomaly service's grant). */
  vaultEvents(expected: number): Promise<ReceivedEvent[]>;
}

async function withBus(vault: VaultCtx): Promise<Ctx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-keys-'));
  const shared = EmbeddedBus.open(path.join(dir, 'bus.sqlite'), { pollIntervalMs: 20 });
  const auditBus = shared.forService('audit');
  await auditBus.ensureStreams();
  await auditBus.close();
  const ctx: Ctx = {
    ...vault,
    shared,
    bus: shared.forService('contact-vault'),
    rotateDeps(policies) {
      const inner = new BusAuditPublisher(ctx.bus);
      const audited: string[] = [];
      const audit: AuditPublisher = {
        record: (e, companions) => inner.record(e, companions),
        publishEntry: async (e, id, at) => {
          const entry = await inner.publishEntry(e, id, at);
          audited.push(id);
          return entry;
        },
      };
      return {
        ...vault.deps,
        ...(policies ? { policies } : {}),
        audit,
        audited,
        inventory: vault.stores.inventory,
        operations: vault.stores.operations,
        leases: vault.stores.leases,
      };
    },
    async busDown() {
      await ctx.bus.close();
    },
    async busUp() {
      ctx.bus = shared.forService('contact-vault');
      await ctx.bus.ensureStreams();
    },
    async relayKeyEvents() {
      const relay = new OutboxRelay({
        source: vault.stores.operations.outbox(),
        publisher: ctx.bus,
        leases: vault.stores.leases,
        leaseName: 'outbox:contact-vault:operations',
        holder: `test-${process.pid}-${newEventId()}`,
        onError: () => undefined,
      });
      let total = 0;
      try {
        for (;;) {
          const pass = await relay.runOnce();
          total += pass.published + pass.duplicates;
          if (pass.published + pass.duplicates === 0) return total;
        }
      } finally {
        await relay.stop();
      }
    },
    async vaultEvents(expected) {
      const reader = shared.forService('anomaly');
      const seen: ReceivedEvent[] = [];
      const sub = await reader.consume(
        { durable: `reader_vault_${Date.now()}`, domain: 'vault', batch: 256 },
        (e) => void seen.push(e),
      );
      const until = Date.now() + 20_000;
      while (seen.length < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 100));
      await sub.stop();
      await reader.close();
      return seen;
    },
    async close() {
      await ctx.bus.close().catch(() => undefined);
      await shared.close();
      await vault.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await ctx.bus.ensureStreams();
  return ctx;
}

async function expectVaultError(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  expect(err).toMatchObject({ code });
}

describeRepositoryContract<Ctx>(
  'contact-vault key rotation',
  {
    sqlite: async (env) => withBus(await sqliteVault(env)),
    mongo: async (env) => withBus(await mongoVault(env)),
  },
  (ctx, backend) => {
    const find = async (deps: RotateDeps, email: string): Promise<string[]> =>
      (await findContacts(deps, { tenantId: T, by: { field: 'email', value: email }, actor: ADMIN })).contacts.map(
        (c) => c.contactId,
      );
    const allContacts = async (deps: RotateDeps): Promise<string[]> => {
      const ids: string[] = [];
      let pageToken: string | undefined;
      do {
        const page = await listContacts(deps, { tenantId: T, pageSize: 200, ...(pageToken ? { pageToken } : {}) });
        ids.push(...page.contacts.map((c) => c.contactId));
        pageToken = page.nextPageToken || undefined;
      } while (pageToken);
      return ids;
    };

    it('folding turned on and an index rotation: variants find and update the contact, a collision is reported, lookups never miss', async () => {
      const before = ctx().rotateDeps();
      const id = async (email: string): Promise<string> =>
        (await upsertContact(before, { tenantId: T, fields: { email } })).contactId;
      const dotted = await id('John.Smith+news@gmail.com');
      const plus = await id('ann+x@outlook.com');
      const collidesLater = await id('a.b@gmail.com');
      const keepsIt = await id('ab@gmail.com');
      const other = await id('x.y+z@example.com');
      const filler = new Map<string, string>();
      const fillerCount = backend === 'mongo' ? 40 : 150;
      for (let i = 0; i < fillerCount; i++) {
        const email = `first.last${i}@gmail.com`;
        filler.set(email, await id(email));
      }
      const stored = new Map<string, string>([
        ['john.smith+news@gmail.com', dotted],
        ['ann+x@outlook.com', plus],
        ['x.y+z@example.com', other],
        ...filler,
      ]);
      const count = (await allContacts(before)).length;

      // The deployment turns folding on and rotates the index root: the rotation applies the new rules.
      const after = ctx().rotateDeps(FOLDING);
      const { operation, done } = await startRotateTenantKey(after, {
        tenantId: T,
        keyKind: 'index',
        actor: ADMIN,
        purpose: PURPOSE,
      });
      expect(operation.operationId).toBe(rotationOperationId(T, 'index', 2));
      // Lookups by each stored address, under the new rules, keep answering while contacts move.
      let looking = true;
      let lookups = 0;
      const misses: string[] = [];
      const reader = (async () => {
        const entries = [...stored];
        while (looking) {
          const [email, expected] = entries[lookups++ % entries.length]!;
          if ((await find(after, email))[0] !== expected) misses.push(email);
        }
      })();
      // Ten stored addresses imported while the rotation runs: each lands on its stored contact, none is created.
      let rotated = false;
      void done.then(() => (rotated = true));
      // The last ones created, so the re-index (in id order) has not reached them yet.
      const imported = [...filler].slice(-10);
      const results = await collect(
        importContacts(
          after,
          asRows(imported.map(([email], i) => ({ tenantId: T, row: String(i + 2), fields: { email } }))),
        ),
      );
      expect(rotated).toBe(false);
      expect(results.map((r) => r.contactId)).toEqual(imported.map(([, contactId]) => contactId));
      expect(results.map((r) => r.result)).not.toContain('created');
      const op = await done;
      looking = false;
      await reader;
      expect(op.errorReason).toBe('');
      expect(lookups).toBeGreaterThan(0);
      expect(misses).toEqual([]);
      const result = JSON.parse(op.result) as Record<string, unknown>;
      expect(result).toMatchObject({
        keyKind: 'index',
        version: 2,
        normVersion: 1,
        // john.smith+news@gmail.com, ann+x@outlook.com and every first.lastN@gmail.com (a.b@gmail.com collides),
        // less those the import above already rewrote under the new rules.
        renormalized: 2 + fillerCount - results.filter((r) => r.result === 'updated').length,
        conflicts: 1,
        conflictContactIds: [collidesLater],
        invalid: 0,
        retired: [1],
      });
      // Ids only in the result: no address, local part or domain.
      expect(op.result).not.toMatch(/gmail|outlook|smith|@/i);

      // Variants find the contact; an upsert of a variant updates it; nothing was duplicated.
      for (const variant of ['johnsmith@gmail.com', 'J.O.H.N.Smith+promo@googlemail.com', 'john.smith@gmail.com']) {
        expect(await find(after, variant)).toEqual([dotted]);
      }
      expect(await find(after, 'ann+other@outlook.com')).toEqual([plus]);
      expect(await find(after, 'x.y+z@example.com')).toEqual([other]);
      expect(await find(after, 'x.y@example.com')).toEqual([]); // other providers are never folded
      const updated = await upsertContact(after, {
        tenantId: T,
        fields: { email: 'john.smith+promo@gmail.com', name: 'John' },
      });
      expect(updated).toMatchObject({ contactId: dotted, created: false, changed: true });
      expect(
        (await upsertContact(after, { tenantId: T, fields: { email: 'first.last7+x@googlemail.com' } })).contactId,
      ).toBe(filler.get('first.last7@gmail.com'));
      expect(await allContacts(after)).toHaveLength(count);

      // The collision: the contact that already held ab@gmail.com keeps it; the other is kept as stored, unmerged.
      expect(await find(after, 'a.b@gmail.com')).toEqual([keepsIt]);
      const loser = await after.contacts.get(T, collidesLater);
      expect((await openVerified(after, loser!)).email).toBe('a.b@gmail.com');
      // Records and indexes agree (a reveal would pass), under the new version only, values stored folded.
      const moved = await after.contacts.get(T, dotted);
      expect(await openVerified(after, moved!)).toEqual({ email: 'johnsmith@gmail.com', name: 'John' });
      expect(moved!.indexes.map((i) => [i.keyVersion, i.normVersion])).toEqual([[2, 1]]);
      const counts = await ctx().counts();
      expect(counts['index_entries']).toBe(count);
    }, 180_000);

    it('fails closed with the bus down: nothing created; the next call records its own event and rotates once', async () => {
      const deps = ctx().rotateDeps();
      const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'kek@example.com' } });
      expect(await deps.inventory.latestVersion(T, 'kek')).toBe(1);

      await ctx().busDown();
      const down = ctx().rotateDeps();
      await expectVaultError(
        startRotateTenantKey(down, { tenantId: T, keyKind: 'kek', actor: ADMIN, purpose: PURPOSE }),
        'AUDIT_UNAVAILABLE',
      );
      expect(await deps.inventory.latestVersion(T, 'kek')).toBe(1);
      const failed = await deps.operations.get(rotationOperationId(T, 'kek', 2));
      expect(failed).toMatchObject({ done: true, errorReason: 'AUDIT_UNAVAILABLE', rotation: { stage: 'audit' } });
      expect(down.audited).toEqual([]);

      await ctx().busUp();
      const up = ctx().rotateDeps();
      const { operation, done } = await startRotateTenantKey(up, {
        tenantId: T,
        keyKind: 'kek',
        actor: ADMIN,
        purpose: PURPOSE,
      });
      expect(operation.operationId).toBe(rotationOperationId(T, 'kek', 2));
      const op = await done;
      expect(op.errorReason).toBe('');
      expect(JSON.parse(op.result)).toMatchObject({ keyKind: 'kek', version: 2, retired: [1] });
      expect(await deps.inventory.latestVersion(T, 'kek')).toBe(2);
      expect(up.audited).toHaveLength(1);
      const c = await deps.contacts.get(T, contactId);
      expect(await deps.cipher.open(T, contactId, c!.record)).toEqual({ email: 'kek@example.com' });
    });

    it('resumes a rotation that stopped after its audit event or after creating its version, never another version', async () => {
      const deps = ctx().rotateDeps();
      await upsertContact(deps, { tenantId: T, fields: { email: 'resume@example.com' } });
      // A replica stopped right after the audit stream acknowledged the event (the version was not created yet).
      const at = new Date();
      const eventId = newEventId();
      await deps.operations.save({
        operationId: rotationOperationId(T, 'kek', 2),
        kind: 'rotate-tenant-key',
        tenantId: T,
        done: false,
        progress: 0,
        result: '',
        errorReason: '',
        createdAt: at,
        updatedAt: at,
        auditEvent: {
          eventId,
          occurredAt: at.getTime(),
          event: {
            tenantId: T,
            action: 'key.rotate',
            actor: ADMIN,
            resourceIds: ['kek:v2'],
            purposeCode: 'legal-hold',
            outcome: 'succeeded',
          },
        },
        rotation: { keyKind: 'kek', version: 2, stage: 'audited' },
      });
      const resumed = await startRotateTenantKey(deps, { tenantId: T, keyKind: 'kek', actor: ADMIN });
      expect((await resumed.done).errorReason).toBe('');
      expect(await deps.inventory.latestVersion(T, 'kek')).toBe(2);
      expect(deps.audited).toEqual([]); // already on the record: not published again
      expect((await deps.operations.get(rotationOperationId(T, 'kek', 2)))?.auditEvent?.eventId).toBe(eventId);

      // A replica stopped after creating version 3, before the rewrap finished.
      expect(await deps.keys.rotateKek(T)).toBe(3);
      const v3 = await deps.operations.get(rotationOperationId(T, 'kek', 2));
      await deps.operations.save({
        ...v3!,
        operationId: rotationOperationId(T, 'kek', 3),
        done: false,
        result: '',
        rotation: { keyKind: 'kek', version: 3, stage: 'created' },
      });
      const again = await startRotateTenantKey(deps, { tenantId: T, keyKind: 'kek', actor: ADMIN });
      expect(again.operation.operationId).toBe(rotationOperationId(T, 'kek', 3));
      expect(JSON.parse((await again.done).result)).toMatchObject({ version: 3, retired: [1, 2] });
      expect(await deps.inventory.latestVersion(T, 'kek')).toBe(3);
      expect(await deps.inventory.countUsingKek(T, 2)).toBe(0);
      expect(await deps.inventory.retired(T, 'kek')).toEqual([1, 2]);
      // Finished: the next call is a new rotation.
      const next = await startRotateTenantKey(deps, { tenantId: T, keyKind: 'kek', actor: ADMIN });
      expect(next.operation.operationId).toBe(rotationOperationId(T, 'kek', 4));
      expect((await next.done).errorReason).toBe('');
    });

    it('runs one rotation per tenant key: a concurrent call answers with the running operation', async () => {
      const deps = ctx().rotateDeps();
      for (let i = 0; i < 20; i++) await upsertContact(deps, { tenantId: T, fields: { email: `c${i}@example.com` } });
      const [a, b] = await Promise.all([
        startRotateTenantKey(deps, { tenantId: T, keyKind: 'index', actor: ADMIN }),
        startRotateTenantKey(deps, { tenantId: T, keyKind: 'index', actor: ADMIN }),
      ]);
      expect(b.operation.operationId).toBe(a.operation.operationId);
      const [opA, opB] = await Promise.all([a.done, b.done]);
      expect([opA.errorReason, opB.errorReason]).toEqual(['', '']);
      expect(await deps.inventory.latestVersion(T, 'index')).toBe(2);
      expect(deps.audited).toHaveLength(1);
    });

    it('publishes key events from the operations outbox, with the tenant key as aggregate; none lost to a bus outage', async () => {
      const deps = ctx().rotateDeps();
      await upsertContact(deps, { tenantId: T, fields: { email: 'events@example.com' } });
      expect(
        (await (await startRotateTenantKey(deps, { tenantId: T, keyKind: 'kek', actor: ADMIN })).done).errorReason,
      ).toBe('');
      expect(
        (await (await startRotateTenantKey(deps, { tenantId: T, keyKind: 'index', actor: ADMIN })).done).errorReason,
      ).toBe('');
      // The bus goes down before the relay runs: the events wait in the outbox.
      await ctx().busDown();
      await expect(ctx().relayKeyEvents()).rejects.toBeDefined();
      await ctx().busUp();
      expect(await ctx().relayKeyEvents()).toBe(4);
      expect(await ctx().relayKeyEvents()).toBe(0);

      const events = (await ctx().vaultEvents(4)).filter((e) => e.type.startsWith('vault.tenant_key.'));
      const seen = events.map((e) => {
        const body =
          e.type === 'vault.tenant_key.rotated'
            ? eventsV1.TenantKeyRotated.decode(e.payload)
            : eventsV1.TenantKeyRetired.decode(e.payload);
        return { type: e.type, subject: e.subject, aggregate: e.aggregateId, version: e.aggregateVersion, body };
      });
      const subject = (token: string): string => `sealpost.vault.${T}.${token}`;
      expect(seen).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            type: 'vault.tenant_key.rotated',
            subject: subject('tenant_key_rotated'),
            aggregate: `${T}:key:kek`,
            version: 3,
            body: expect.objectContaining({ tenantId: T, keyKind: 'kek', newVersion: 2 }),
          }),
          expect.objectContaining({
            type: 'vault.tenant_key.retired',
            subject: subject('tenant_key_retired'),
            aggregate: `${T}:key:kek`,
            version: 4,
            body: expect.objectContaining({ keyKind: 'kek', currentVersion: 2, retiredVersions: [1] }),
          }),
          expect.objectContaining({ type: 'vault.tenant_key.rotated', aggregate: `${T}:key:index`, version: 3 }),
          expect.objectContaining({ type: 'vault.tenant_key.retired', aggregate: `${T}:key:index`, version: 4 }),
        ]),
      );
      expect(seen).toHaveLength(4);
    });
  },
);
