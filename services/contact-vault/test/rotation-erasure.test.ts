/**
 * Use cases on SQLite with a local keyring: KEK rotation while writes continue, index-root rotation while lookups
 * continue (suppression tombstones survive), and erasure against a restored older key store + the erasure ledger.
 * Audit events go over the embedded bus to the REAL audit service, which erasures wait on for their receipts'
 * inclusion proofs (gRPC over mutual TLS).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ContactCipher, KeyNotFoundError } from '@sealpost/crypto';
import { SqliteDataKeyStore, openSqliteKeyStore } from '../src/adapters/sqlite/sqlite-key-store';
import { openLocalReceiptSigner } from '../src/adapters/signing/local-receipt-signer';
import { startEraseContact, type EraseDeps } from '../src/app/erase-contact';
import { importContacts, type ImportRow } from '../src/app/import-contacts';
import { isSuppressed, reapplyErasureLedger } from '../src/app/erasure-ledger';
import { findContacts } from '../src/app/find-contacts';
import { startRotateTenantKey, type RotateDeps } from '../src/app/rotate-tenant-key';
import { sweepRetention } from '../src/app/sweep-retention';
import { upsertContact } from '../src/app/upsert-contact';
import { indexKeyOf } from '../src/app/vault-deps';
import { openDevTokenIssuer } from '@sealpost/access';
import { EmbeddedBus, type ServiceBus } from '@sealpost/bus';
import { BusAuditPublisher } from '../src/adapters/bus/bus-audit-publisher';
import type { GrpcAuditProofs } from '../src/adapters/grpc/grpc-audit-proofs';
import type { AuditProofs } from '../src/ports/audit-proofs';
import type { AuditPublisher } from '../src/ports/audit-publisher';
import { startAuditPeer, type AuditPeer } from './support/audit-peer';
import { canaries, findForbidden, forbiddenForms } from './support/canaries';
import { sqliteVault, type VaultCtx } from './support/vault-stores';

const T = 't-rot';
const actor = { kind: 'operator' as const, id: 'op-1' };

/** The real bus publisher, noting the actions it published (the rotation test asserts one). */
function flipped(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[0]! ^= 1;
  return copy;
}

function recordingAudit(bus: ServiceBus): AuditPublisher & { actions: string[] } {
  const inner = new BusAuditPublisher(bus);
  const actions: string[] = [];
  return {
    actions,
    record: async (e, companions) => {
      const id = await inner.record(e, companions);
      actions.push(e.action);
      return id;
    },
    publishEntry: async (e, id, at) => {
      const entry = await inner.publishEntry(e, id, at);
      actions.push(e.action);
      return entry;
    },
  };
}

describe('rotation and erasure use cases (SQLite)', () => {
  let dir: string;
  let ctx: VaultCtx;
  let deps: EraseDeps & RotateDeps;
  let audit: ReturnType<typeof recordingAudit>;
  let peerDir: string;
  let shared: EmbeddedBus;
  let vaultBus: ServiceBus;
  let auditPeer: AuditPeer;
  let auditProofs: GrpcAuditProofs;

  beforeAll(async () => {
    peerDir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-rot-audit-'));
    // The audit service verifies operator tokens with these keys (none are used here).
    await openDevTokenIssuer({ dir: path.join(peerDir, 'identity'), mode: 'test' });
    shared = EmbeddedBus.open(path.join(peerDir, 'bus.sqlite'), { pollIntervalMs: 20 });
    auditPeer = await startAuditPeer({
      dir: peerDir,
      pki: path.join(peerDir, 'pki'),
      shared,
      jwksFile: path.join(peerDir, 'identity', 'jwks.json'),
      sthEverySeconds: 1,
    });
    auditProofs = await auditPeer.proofsForVault(15_000);
    vaultBus = shared.forService('contact-vault');
  }, 60_000);

  afterAll(async () => {
    auditProofs?.close();
    await vaultBus?.close();
    await auditPeer?.stop();
    await shared?.close();
    rmSync(peerDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sealpost-vault-rot-'));
    ctx = await sqliteVault({ dir, file: path.join(dir, 'contact-vault.sqlite') });
    audit = recordingAudit(vaultBus);
    deps = {
      ...ctx.deps,
      audit,
      auditProofs,
      erasures: ctx.stores.erasures,
      operations: ctx.stores.operations,
      inventory: ctx.stores.inventory,
      leases: ctx.stores.leases,
      signer: await openLocalReceiptSigner({ dataDir: dir, mode: 'embedded' }),
    };
  });

  afterEach(async () => {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const find = async (email: string): Promise<string[]> =>
    (await findContacts(deps, { tenantId: T, by: { field: 'email', value: email }, actor })).contacts.map(
      (c) => c.contactId,
    );

  it('KEK rotation while writes continue: every contact stays readable and the old version retires', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 300; i++)
      ids.push((await upsertContact(deps, { tenantId: T, fields: { email: `k${i}@example.com` } })).contactId);
    const { done } = await startRotateTenantKey(deps, { tenantId: T, keyKind: 'kek', actor });
    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) {
        ids.push((await upsertContact(deps, { tenantId: T, fields: { email: `w${i++}@example.com` } })).contactId);
        // Every contact so far must open at every moment of the rotation.
        const probe = ids[Math.floor(Math.random() * ids.length)]!;
        const c = await deps.contacts.get(T, probe);
        await deps.cipher.open(T, probe, c!.record);
      }
    })();
    const op = await done;
    writing = false;
    await writer;
    expect(op.errorReason).toBe('');
    expect(JSON.parse(op.result)).toMatchObject({ keyKind: 'kek', version: 2, retired: [1] });
    expect(await deps.inventory.countUsingKek(T, 1)).toBe(0);
    expect(await deps.inventory.retired(T, 'kek')).toEqual([1]);
    for (const id of ids) {
      const c = await deps.contacts.get(T, id);
      expect(Object.keys(await deps.cipher.open(T, id, c!.record))).toEqual(['email']);
    }
    expect(audit.actions).toContain('key.rotate');
  });

  it('index rotation while lookups continue: every contact stays findable; suppression tombstones survive', async () => {
    const emails = Array.from({ length: 200 }, (_, i) => `x${i}@example.com`);
    const ids = new Map<string, string>();
    for (const e of emails) ids.set(e, (await upsertContact(deps, { tenantId: T, fields: { email: e } })).contactId);
    const erased = await upsertContact(deps, { tenantId: T, fields: { email: 'gone@example.com' } });
    const er = await startEraseContact(deps, {
      tenantId: T,
      contactId: erased.contactId,
      actor,
      keepSuppressionTombstone: true,
    });
    expect((await er.done).errorReason).toBe('');
    expect(await isSuppressed(deps, T, { field: 'email', value: 'Gone@Example.com' })).toBe(true);

    const { done } = await startRotateTenantKey(deps, { tenantId: T, keyKind: 'index', actor });
    let looking = true;
    let lookups = 0;
    const misses: string[] = [];
    const reader = (async () => {
      while (looking) {
        const e = emails[lookups++ % emails.length]!;
        const found = await find(e);
        if (found[0] !== ids.get(e)) misses.push(e);
      }
    })();
    const added: string[] = [];
    for (let i = 0; i < 30; i++)
      added.push((await upsertContact(deps, { tenantId: T, fields: { email: `late${i}@example.com` } })).contactId);
    const op = await done;
    looking = false;
    await reader;
    expect(op.errorReason).toBe('');
    expect(JSON.parse(op.result)).toMatchObject({ keyKind: 'index', version: 2, retired: [1] });
    expect(lookups).toBeGreaterThan(0);
    expect(misses).toEqual([]);
    for (const e of emails) expect(await find(e)).toEqual([ids.get(e)]);
    for (let i = 0; i < 30; i++) expect(await find(`late${i}@example.com`)).toEqual([added[i]]);
    // Old-version entries are gone; every contact lists version-2 indexes only.
    const c = await deps.contacts.get(T, ids.get(emails[0]!)!);
    expect(c!.indexes.map((i) => i.keyVersion)).toEqual([2]);
    const counts = await ctx.counts();
    expect(counts['index_entries']).toBe(emails.length + 30);
    // Dedupe still works after the rotation (no duplicate created for a known address).
    expect((await upsertContact(deps, { tenantId: T, fields: { email: emails[5]! } })).contactId).toBe(
      ids.get(emails[5]!),
    );
    expect(await isSuppressed(deps, T, { field: 'email', value: 'gone@example.com' })).toBe(true);
    expect(await isSuppressed(deps, T, { field: 'email', value: 'x1@example.com' })).toBe(false);
  });

  it('restoring an older key-store copy and re-applying the erasure ledger leaves the contact unreadable', async () => {
    const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'restore@example.com' } });
    const keep = await upsertContact(deps, { tenantId: T, fields: { email: 'keep@example.com' } });
    const before = await deps.contacts.get(T, contactId);
    const keyFile = path.join(dir, 'contact-vault-keys.sqlite');
    const backup = path.join(dir, 'keys-backup.sqlite');
    (await import('better-sqlite3')).default(keyFile).exec(`VACUUM INTO '${backup}'`);

    const { done } = await startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: false });
    expect((await done).errorReason).toBe('');
    await expect(deps.cipher.open(T, contactId, before!.record)).rejects.toBeInstanceOf(KeyNotFoundError);

    // Restore: the old key-store copy has the data key again, so the old record opens with it...
    const restoredFile = path.join(dir, 'restored-keys.sqlite');
    copyFileSync(backup, restoredFile);
    const restoredDb = openSqliteKeyStore(restoredFile);
    try {
      const restoredCipher = new ContactCipher({ keys: ctx.keys, dataKeys: new SqliteDataKeyStore(restoredDb) });
      expect(await restoredCipher.open(T, contactId, before!.record)).toEqual({ email: 'restore@example.com' });
      // ...until the ledger is re-applied.
      const report = await reapplyErasureLedger({ ...deps, cipher: restoredCipher });
      expect(report).toEqual({ entries: 1, keysShredded: 1, contactsStillLive: 0 });
      await expect(restoredCipher.open(T, contactId, before!.record)).rejects.toBeInstanceOf(KeyNotFoundError);
      const other = await deps.contacts.get(T, keep.contactId);
      expect(await restoredCipher.open(T, keep.contactId, other!.record)).toEqual({ email: 'keep@example.com' });
      expect(await reapplyErasureLedger({ ...deps, cipher: restoredCipher })).toEqual({
        entries: 1,
        keysShredded: 0,
        contactsStillLive: 0,
      });
    } finally {
      restoredDb.close();
    }
  });

  it('an erasure releases the index entries: the same address later is a new contact, the old one stays gone', async () => {
    const fields = { email: 'gone@example.com', phone: '+447911200999' };
    const { contactId } = await upsertContact(deps, { tenantId: T, fields });
    const indexes = (await deps.contacts.get(T, contactId))!.indexes;
    expect(indexes.map((i) => i.fieldKind).sort()).toEqual(['email', 'phone']);
    const erased = await startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: false });
    expect(await erased.done).toMatchObject({ done: true, errorReason: '' });
    for (const index of indexes) expect(await deps.indexEntries.find(indexKeyOf(T, index))).toBeUndefined();
    expect(await deps.contacts.get(T, contactId)).toBeUndefined();
    expect(await find(fields.email)).toEqual([]);

    const again = await upsertContact(deps, { tenantId: T, fields });
    expect(again.created).toBe(true);
    expect(again.contactId).not.toBe(contactId);
    expect(await find(fields.email)).toEqual([again.contactId]);
  });

  it.each([
    [
      'whose leaf hash is not the published entry',
      (p: { leafHash: Uint8Array }) => ({ leafHash: flipped(p.leafHash) }),
    ],
    ['of another entry', () => ({ entryId: 'a0000000-0000-7000-8000-000000000000' })],
  ])(
    'an audit proof %s ends the erasure AUDIT_PROOF_INVALID, with no receipt signed',
    async (_, tamper: (p: { leafHash: Uint8Array }) => object) => {
      // The audit service's real proof, altered on its way to the vault: the vault checks it itself.
      const tampered: AuditProofs = {
        awaitInclusion: async (entryId, options) => {
          const real = await auditProofs.awaitInclusion(entryId, options);
          return { ...real, ...tamper(real) };
        },
      };
      const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'proof@example.com' } });
      const erased = await startEraseContact(
        { ...deps, auditProofs: tampered },
        { tenantId: T, contactId, actor, keepSuppressionTombstone: false },
      );
      const op = await erased.done;
      expect(op).toMatchObject({ done: true, errorReason: 'AUDIT_PROOF_INVALID', result: '' });
    },
  );

  it('re-applying the ledger reports a contact that is live again (an erasure stopped before its tombstone)', async () => {
    const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'halfway@example.com' } });
    // What a crash right after the ledger step leaves: the entry, the key, and the live document.
    await deps.erasures.appendLedger({ tenantId: T, contactId, erasureId: 'er_halfway', erasedAt: new Date() });
    expect(await reapplyErasureLedger(deps)).toEqual({ entries: 1, keysShredded: 1, contactsStillLive: 1 });
    const live = await deps.contacts.get(T, contactId);
    await expect(deps.cipher.open(T, contactId, live!.record)).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('five erasures of one contact at once: one erasure, one ledger entry, every caller gets its operation', async () => {
    const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'twice@example.com' } });
    const erase = () => startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: false });
    const started = await Promise.all(Array.from({ length: 5 }, erase));
    expect(new Set(started.map((s) => s.operation.operationId)).size).toBe(1);
    const finished = await Promise.all(started.map((s) => s.done));
    for (const op of finished) expect(op).toMatchObject({ done: true, errorReason: '' });
    const ledger = (await deps.erasures.ledger({ limit: 100 })).filter((e) => e.contactId === contactId);
    expect(ledger).toHaveLength(1);
    expect(finished[0]!.operationId).toBe(`op_${ledger[0]!.erasureId}`);
    // Erasing it again later answers with the same finished operation.
    expect((await erase()).operation).toEqual(await deps.operations.get(finished[0]!.operationId));
  });

  it('an erasure that cannot start within 10 s (another holds the contact) fails CONCURRENT_UPDATE, changing nothing', async () => {
    const { contactId } = await upsertContact(deps, { tenantId: T, fields: { email: 'held@example.com' } });
    // Another replica stuck between its first look and its tombstone.
    const other = await deps.leases.tryAcquire(`erase:${T}:${contactId}`, 'other-replica', 60_000);
    expect(other).not.toBeNull();
    const started = Date.now();
    await expect(
      startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: false }),
    ).rejects.toMatchObject({ code: 'CONCURRENT_UPDATE' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(10_000);
    expect(await deps.contacts.get(T, contactId)).toBeDefined();
    expect(await deps.contacts.tombstone(T, contactId)).toBeUndefined();
    expect((await deps.erasures.ledger({ limit: 100 })).filter((e) => e.contactId === contactId)).toEqual([]);
    // Once it is released, the erasure goes through.
    await deps.leases.release(other!);
    const { done } = await startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: false });
    expect((await done).errorReason).toBe('');
  }, 30_000);

  it('leaves no canary in either store after imports, erasures with tombstones, both rotations and a retention sweep', async () => {
    const people = canaries(40, 'life');
    const name = (i: number): string => `Lifecyclename Person${String(i).padStart(3, '0')}`;
    const t0 = new Date('2024-01-01T00:00:00Z');
    // Half imported long ago (the sweep erases them), half upserted now.
    async function* rows(): AsyncIterable<ImportRow> {
      for (const [i, p] of people.slice(0, 20).entries())
        yield { tenantId: T, row: String(i + 2), fields: { email: p.rawEmail, phone: p.rawPhone, name: name(i) } };
    }
    for await (const r of importContacts({ ...deps, now: () => t0 }, rows())) expect(r.result).toBe('created');
    const ids: string[] = [];
    for (const [i, p] of people.slice(20).entries()) {
      const fields = { email: p.rawEmail, phone: p.rawPhone, name: name(20 + i) };
      ids.push((await upsertContact(deps, { tenantId: T, fields })).contactId);
    }
    for (const contactId of ids.slice(0, 5)) {
      const erased = await startEraseContact(deps, { tenantId: T, contactId, actor, keepSuppressionTombstone: true });
      expect(await erased.done).toMatchObject({ done: true, errorReason: '' });
    }
    for (const keyKind of ['kek', 'index'] as const) {
      const rotated = await startRotateTenantKey(deps, { tenantId: T, keyKind, actor });
      expect((await rotated.done).errorReason).toBe('');
    }
    const swept = await sweepRetention(deps, { policy: { tenants: { [T]: 30 } }, dryRun: false });
    expect(swept.tenants[T]).toMatchObject({ due: 20, erased: 20, failed: 0 });

    const needles = forbiddenForms(people.flatMap((p, i) => [p.rawEmail, p.email, p.rawPhone, p.phone, name(i)]));
    expect(findForbidden(await ctx.dumpContactStore(), needles)).toEqual([]);
    expect(findForbidden(await ctx.dumpKeyStore(), needles)).toEqual([]);
    // The scan reads what is there: the 15 contacts left still open, and their values are only inside records.
    expect(await find(people[39]!.rawEmail)).toEqual([ids[19]]);
  });

  it('retention sweep: dry run counts, the real run erases inactive contacts only', async () => {
    const t0 = new Date('2024-01-01T00:00:00Z');
    const oldDeps = { ...deps, now: () => t0 };
    for (let i = 0; i < 3; i++) await upsertContact(oldDeps, { tenantId: T, fields: { email: `old${i}@example.com` } });
    const fresh = await upsertContact(deps, { tenantId: T, fields: { email: 'fresh@example.com' } });
    const policy = { tenants: { [T]: 30 } };
    const dry = await sweepRetention(deps, { policy, dryRun: true });
    expect(dry).toEqual({ dryRun: true, tenants: { [T]: { days: 30, due: 3, erased: 0, failed: 0 } } });
    expect(await find('old0@example.com')).toHaveLength(1);
    const real = await sweepRetention(deps, { policy, dryRun: false });
    expect(real.tenants[T]).toEqual({ days: 30, due: 3, erased: 3, failed: 0 });
    expect(await find('old0@example.com')).toEqual([]);
    expect(await find('fresh@example.com')).toEqual([fresh.contactId]);
    expect((await sweepRetention(deps, { policy, dryRun: true })).tenants[T]!.due).toBe(0);
    // Retention keeps no suppression tombstone: a swept address may be collected again.
    expect(await isSuppressed(deps, T, { field: 'email', value: 'old0@example.com' })).toBe(false);
  });

  it('refuses to rotate the suppression key: its tombstones must match the same address forever', async () => {
    await expect(
      startRotateTenantKey(deps, { tenantId: T, keyKind: 'suppression' as 'kek', actor }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'key_kind' });
  });
});
