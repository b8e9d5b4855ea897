/**
 * Reveal, resolve, erase, export and key rotation over real mutual TLS on SQLite with the embedded bus: the access
 * refusals (MFA, purpose, role, tenant, identity), fail-closed audit, record swaps, crypto-shredding against a copy
 * of the contact store, receipts, quotas and rotation operations. The real audit service runs beside the vault:
 * erasures wait for its signed inclusion proofs.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import {
  DEFAULT_ACCESS_POLICY,
  openDevCa,
  openDevTokenIssuer,
  withServiceGrants,
  writeDevTlsFiles,
  type IssuedCertificate,
} from '@sealpost/access';
import { EmbeddedBus, type ReceivedEvent, type ServiceBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { ContactCipher, KeyHierarchy, LocalKeyring, kmsKeyIdResolver } from '@sealpost/crypto';
import { auditEventsV1, vaultV1 } from '@sealpost/proto';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { SqliteDataKeyStore, SqliteTenantKeyStore, openSqliteKeyStore } from '../src/adapters/sqlite/sqlite-key-store';
import { verifyReceipt } from '../src/adapters/signing/local-receipt-signer';
import { openLocalReceiptSigner } from '../src/adapters/signing/local-receipt-signer';
import { verifyErasureReceipt } from '../src/app/erasure-receipt';
import { LOCAL_KMS_KEY_TEMPLATE, startContactVaultService, type RunningContactVaultService } from '../src/service';
import { startAuditPeer, type AuditPeer } from './support/audit-peer';

const T1 = 't-acme';
const T2 = 't-globex';
const Client = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');
const TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  upsertContact: vaultV1.UpsertContactRequest,
  revealContact: vaultV1.RevealContactRequest,
  eraseContact: vaultV1.EraseContactRequest,
  getOperation: vaultV1.GetOperationRequest,
  exportContact: vaultV1.ExportContactRequest,
  rotateTenantKey: vaultV1.RotateTenantKeyRequest,
  findContacts: vaultV1.FindContactsRequest,
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Result<T> {
  response?: T;
  error?: grpc.ServiceError;
  reason?: string;
}

const PURPOSE = { 'x-sealpost-purpose': 'support-request', 'x-sealpost-ticket': 'SUP-1234' };

describe('contact vault subject rights over mutual TLS (SQLite, embedded bus)', () => {
  let dir: TempDir;
  let dataDir: string;
  let shared: EmbeddedBus;
  let bus: ServiceBus;
  let service: RunningContactVaultService;
  let audit: AuditPeer;
  let operatorClient: grpc.Client;
  let dispatchClient: grpc.Client;
  let consentClient: grpc.Client;
  const tokens: Record<string, string> = {};

  const md = (token: string | undefined, extra: Record<string, string> = {}): grpc.Metadata => {
    const m = new grpc.Metadata();
    if (token) m.set('authorization', `Bearer ${token}`);
    for (const [k, v] of Object.entries(extra)) m.set(k, v);
    return m;
  };

  const call = <T>(
    method: string,
    request: object,
    token: string | undefined,
    extra: Record<string, string> = {},
    client: grpc.Client = operatorClient,
  ): Promise<Result<T>> =>
    new Promise((resolve) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        TYPES[method]!.fromPartial(request),
        md(token, extra),
        { deadline: Date.now() + 20_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const resolveStream = (
    client: grpc.Client,
    request: vaultV1.DeepPartial<vaultV1.ResolveRecipientsRequest>,
    token?: string,
  ): Promise<{ batches: vaultV1.ResolveRecipientsResponse[]; error?: grpc.ServiceError; reason?: string }> =>
    new Promise((resolve) => {
      const stream = (
        client as unknown as {
          resolveRecipients: (
            r: unknown,
            m: grpc.Metadata,
          ) => grpc.ClientReadableStream<vaultV1.ResolveRecipientsResponse>;
        }
      ).resolveRecipients(vaultV1.ResolveRecipientsRequest.fromPartial(request), md(token));
      const batches: vaultV1.ResolveRecipientsResponse[] = [];
      stream.on('data', (b: vaultV1.ResolveRecipientsResponse) => batches.push(b));
      stream.on('error', (error: grpc.ServiceError) => {
        const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
        resolve({ batches, error, reason: typeof reason === 'string' ? reason : undefined });
      });
      stream.on('end', () => resolve({ batches }));
    });

  /** Audit events on the bus, read until one with `id` arrived (or 15 s passed). */
  const auditEvents = async (id: string): Promise<ReceivedEvent[]> => {
    const reader = shared.forService('audit');
    const seen: ReceivedEvent[] = [];
    const sub = await reader.consume({ durable: `r_audit_${Date.now()}`, domain: 'audit', batch: 256 }, (e) => {
      seen.push(e);
    });
    const until = Date.now() + 15_000;
    while (!seen.some((e) => e.id === id) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    await sub.stop();
    await reader.close();
    return seen;
  };

  const upsert = async (fields: object): Promise<string> => {
    const r = await call<vaultV1.UpsertContactResponse>('upsertContact', { tenantId: T1, fields }, tokens['admin']);
    expect(r.error).toBeUndefined();
    return r.response!.contactId;
  };

  const waitOperation = async (id: string, token: string): Promise<vaultV1.Operation> => {
    const until = Date.now() + 30_000;
    for (;;) {
      const r = await call<vaultV1.Operation>('getOperation', { operationId: id }, token);
      expect(r.error).toBeUndefined();
      if (r.response!.done || Date.now() > until) return r.response!;
      await new Promise((res) => setTimeout(res, 50));
    }
  };

  let recorded: TestMetrics;

  beforeAll(async () => {
    // Before the service is built: its instruments bind to the meter provider current at creation.
    recorded = startTestMetrics();
    dir = tempDir('sealpost-vault-rights-');
    dataDir = path.join(dir.path, 'data');
    const pki = path.join(dir.path, 'pki');
    const serverTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'contact-vault' });
    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli: IssuedCertificate = await ca.issue({ service: 'cli', usage: 'client' });
    const dispatch: IssuedCertificate = await ca.issue({ service: 'dispatch', usage: 'client' });
    const consent: IssuedCertificate = await ca.issue({ service: 'consent', usage: 'client' });
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    tokens['support'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-support-1', mfa: true });
    tokens['supportNoMfa'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-support-2' });
    tokens['dpo'] = await issuer.issue({ tenant: T1, role: 'dpo', subject: 'op-dpo-1', mfa: true });
    tokens['marketer'] = await issuer.issue({ tenant: T1, role: 'marketer', subject: 'op-mkt-1', mfa: true });
    tokens['admin'] = await issuer.issue({ tenant: T1, role: 'admin', subject: 'op-admin-1', mfa: true });
    tokens['otherTenant'] = await issuer.issue({ tenant: T2, role: 'dpo', subject: 'op-globex-1', mfa: true });
    tokens['quota'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-quota-1', mfa: true });
    tokens['quotaDpo'] = await issuer.issue({ tenant: T1, role: 'dpo', subject: 'op-quota-2', mfa: true });

    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    // The audit service creates the audit stream and appends and signs what the vault publishes.
    audit = await startAuditPeer({ dir: dir.path, pki, shared, jwksFile: path.join(issuerDir, 'jwks.json') });
    const config = loadConfig('contact-vault', {
      SEALPOST_DATA_DIR: dataDir,
      SEALPOST_JWKS_FILE: path.join(issuerDir, 'jwks.json'),
      SEALPOST_AUDIT_GRPC_ADDR: audit.address,
      SEALPOST_TLS_CA_FILE: serverTls.caFile,
      SEALPOST_TLS_CERT_FILE: serverTls.certFile,
      SEALPOST_TLS_KEY_FILE: serverTls.keyFile,
      SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_VAULT_REVEAL_QUOTA: '30/3600',
      SEALPOST_VAULT_RESOLVE_PURPOSE_QUOTA: '5/3600',
    });
    bus = shared.forService('contact-vault');
    service = await startContactVaultService({
      config,
      bus,
      relayPollMs: 20,
      resolveBatchSize: 2,
      // A table that wrongly grants consent ResolveRecipients: the handler's own check must still refuse it.
      accessPolicy: withServiceGrants(DEFAULT_ACCESS_POLICY, {
        '/sealpost.vault.v1.ContactVault/ResolveRecipients': ['consent'],
      }),
    });
    const creds = (c: IssuedCertificate) =>
      grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(c.keyPem), Buffer.from(c.certPem));
    operatorClient = new Client(service.endpoint.grpc, creds(cli));
    dispatchClient = new Client(service.endpoint.grpc, creds(dispatch));
    consentClient = new Client(service.endpoint.grpc, creds(consent));
  }, 60_000);

  afterAll(async () => {
    for (const c of [operatorClient, dispatchClient, consentClient]) c?.close();
    await service?.stop(1000);
    await bus?.close().catch(() => undefined);
    await audit?.stop();
    await shared?.close();
    dir?.cleanup();
    await recorded.shutdown();
  });

  it('reveals only with the permission, MFA, a purpose and the own tenant; the grant is audited first', async () => {
    const id = await upsert({ email: 'Reveal.Me@Example.com', phone: '+44 7911 200301', name: 'Rita' });
    const req = { tenantId: T1, contactId: id };
    const noMfa = await call('revealContact', req, tokens['supportNoMfa'], PURPOSE);
    expect([noMfa.error?.code, noMfa.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'STEP_UP_REQUIRED']);
    const noPurpose = await call('revealContact', req, tokens['support']);
    expect([noPurpose.error?.code, noPurpose.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'PURPOSE_REQUIRED']);
    const freeText = await call('revealContact', req, tokens['support'], { 'x-sealpost-purpose': 'because I want' });
    expect(freeText.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const role = await call('revealContact', req, tokens['marketer'], PURPOSE);
    expect(role.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const tenant = await call('revealContact', req, tokens['otherTenant'], PURPOSE);
    expect([tenant.error?.code, tenant.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'TENANT_MISMATCH']);
    const ownTenantOtherId = await call(
      'revealContact',
      { tenantId: T2, contactId: id },
      tokens['otherTenant'],
      PURPOSE,
    );
    expect(ownTenantOtherId.error?.code).toBe(grpc.status.NOT_FOUND);
    const service = await call('revealContact', req, undefined, PURPOSE, dispatchClient);
    expect(service.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    // A purpose in the body must be the one in the metadata, so the audited purpose is the one the caller stated.
    const otherPurpose = await call(
      'revealContact',
      { ...req, purpose: { code: 'legal-hold', ticketRef: '' } },
      tokens['support'],
      PURPOSE,
    );
    expect([otherPurpose.error?.code, otherPurpose.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'PURPOSE_MISMATCH']);

    const ok = await call<vaultV1.RevealContactResponse>('revealContact', req, tokens['support'], PURPOSE);
    expect(ok.error).toBeUndefined();
    expect(ok.response!.fields).toEqual({ email: 'reveal.me@example.com', phone: '+447911200301', name: 'Rita' });
    const events = await auditEvents(ok.response!.auditEventId);
    const reveal = events.find((e) => e.id === ok.response!.auditEventId);
    expect(reveal?.subject).toBe(`sealpost.audit.vault.${T1}.contact_reveal`);
    expect(auditEventsV1.AuditEvent.decode(reveal!.payload)).toMatchObject({
      eventId: ok.response!.auditEventId,
      action: 'contact.reveal',
      actor: { $case: 'operatorId', value: 'op-support-1' },
      resourceIds: [id],
      purposeCode: 'support-request',
      ticketRef: 'SUP-1234',
      outcome: 'granted',
    });
    expect(Buffer.from(reveal!.payload).toString('latin1')).not.toMatch(/reveal\.me|7911200301/);
  });

  it('refuses a record swapped between two contacts, ciphertext and indexes moved together', async () => {
    const a = await upsert({ email: 'swap.a@example.com' });
    const b = await upsert({ email: 'swap.b@example.com' });
    const db = new Database(path.join(dataDir, 'contact-vault.sqlite'));
    try {
      const row = (id: string) =>
        db.prepare('SELECT record, indexes FROM contacts WHERE tenant_id = ? AND contact_id = ?').get(T1, id) as {
          record: Buffer;
          indexes: string;
        };
      const ra = row(a);
      const rb = row(b);
      const put = db.prepare('UPDATE contacts SET record = ?, indexes = ? WHERE tenant_id = ? AND contact_id = ?');
      // Indexes only (the record stays): find-by-B's-address would land on A; reveal recomputes and refuses.
      put.run(ra.record, rb.indexes, T1, a);
      const indexesOnly = await call('revealContact', { tenantId: T1, contactId: a }, tokens['support'], PURPOSE);
      expect([indexesOnly.error?.code, indexesOnly.reason]).toEqual([
        grpc.status.FAILED_PRECONDITION,
        'RECORD_SWAPPED',
      ]);
      // Ciphertext and indexes together: the record's AAD names contact B, so it does not open as A.
      put.run(rb.record, rb.indexes, T1, a);
      const both = await call<vaultV1.RevealContactResponse>(
        'revealContact',
        { tenantId: T1, contactId: a },
        tokens['support'],
        PURPOSE,
      );
      expect(both.error?.code).toBe(grpc.status.INTERNAL);
      expect(both.reason).toBe('RECORD_TAMPERED');
      expect(JSON.stringify(both)).not.toContain('swap.b');
      // Dispatch never gets a tampered contact's address: it is listed as missing, beside the intact one.
      const resolved = await resolveStream(dispatchClient, {
        tenantId: T1,
        purposeRef: 'cmp_swap',
        contactIds: [a, b],
      });
      expect(resolved.error).toBeUndefined();
      expect(resolved.batches.flatMap((x) => x.recipients)).toEqual([
        { contactId: b, email: 'swap.b@example.com', phone: '' },
      ]);
      expect(resolved.batches.flatMap((x) => x.missingContactIds)).toEqual([a]);
    } finally {
      db.close();
    }
  });

  it('resolves for dispatch only, in audited batches, listing missing ids', async () => {
    const ids = [
      await upsert({ email: 'r1@example.com' }),
      await upsert({ phone: '+44 7911 200311' }),
      await upsert({ email: 'r3@example.com', phone: '+44 7911 200313' }),
    ];
    const unknown = 'ct_000000000aaaaaaaaaaaaaaaaaaaa';
    const request = { tenantId: T1, purposeRef: 'cmp_spring-2025', contactIds: [...ids, unknown] };
    for (const client of [consentClient, operatorClient]) {
      const refused = await resolveStream(client, request, client === operatorClient ? tokens['dpo'] : undefined);
      expect(refused.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(refused.batches).toEqual([]);
      // consent passed the (wrong) table above and was stopped by the handler; the operator, by the table.
      if (client === consentClient) expect(refused.reason).toBe('NOT_ALLOWED');
      else expect(refused.reason).not.toBe('NOT_ALLOWED');
    }
    const ok = await resolveStream(dispatchClient, request);
    expect(ok.error).toBeUndefined();
    expect(ok.batches).toHaveLength(2);
    expect(ok.batches.flatMap((b) => b.recipients)).toEqual([
      { contactId: ids[0], email: 'r1@example.com', phone: '' },
      { contactId: ids[1], email: '', phone: '+447911200311' },
      { contactId: ids[2], email: 'r3@example.com', phone: '+447911200313' },
    ]);
    expect(ok.batches[1]!.missingContactIds).toEqual([unknown]);
    const events = await auditEvents(ok.batches[0]!.auditEventId);
    const batchEvent = events.find((e) => e.id === ok.batches[0]!.auditEventId)!;
    expect(batchEvent.subject).toBe(`sealpost.audit.vault.${T1}.contact_resolve`);
    expect(auditEventsV1.AuditEvent.decode(batchEvent.payload)).toMatchObject({
      action: 'contact.resolve',
      actor: { $case: 'service' },
      resourceIds: ['purpose:cmp_spring-2025', ids[0], ids[1]],
    });
    const badRef = await resolveStream(dispatchClient, { ...request, purposeRef: 'jane@example.com' });
    expect(badRef.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('erases as an operation: shredded against an older contact-store copy, receipt signed, tombstone kept', async () => {
    const id = await upsert({ email: 'erase.me@example.com', phone: '+44 7911 200321' });
    // A "backup" of the contact store taken before the erasure.
    const backup = path.join(dir.path, 'contact-store-backup.sqlite');
    const live = new Database(path.join(dataDir, 'contact-vault.sqlite'));
    live.exec(`VACUUM INTO '${backup}'`);
    live.close();

    const noPurpose = await call('eraseContact', { tenantId: T1, contactId: id }, tokens['dpo']);
    expect(noPurpose.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const support = await call('eraseContact', { tenantId: T1, contactId: id }, tokens['support'], PURPOSE);
    expect(support.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const started = await call<vaultV1.Operation>(
      'eraseContact',
      { tenantId: T1, contactId: id, keepSuppressionTombstone: true },
      tokens['dpo'],
      PURPOSE,
    );
    expect(started.error).toBeUndefined();
    const op = await waitOperation(started.response!.operationId, tokens['dpo']!);
    expect(op).toMatchObject({ kind: 'erase-contact', done: true, errorReason: '', progress: 1 });
    const foreign = await call('getOperation', { operationId: op.operationId }, tokens['otherTenant']);
    expect(foreign.error?.code).toBe(grpc.status.NOT_FOUND);

    const signer = await openLocalReceiptSigner({ dataDir, mode: 'embedded' });
    const receipt = verifyReceipt(op.result, signer.publicJwk);
    expect(receipt).toMatchObject({ tenantId: T1, contactId: id });
    // The receipt cites the audit entry with the audit's signed tree head and the entry's inclusion proof.
    const verified = await verifyErasureReceipt(op.result, {
      receipt: [signer.publicJwk],
      audit: await audit.publicKeys(),
    });
    expect(verified).toMatchObject({ ok: true, entry: { entryId: receipt['auditEventId'], actorId: 'op-dpo-1' } });
    expect((receipt['kept'] as { what: string }[]).map((k) => k.what)).toEqual([
      'tombstone',
      'erasure ledger entry',
      'suppression tombstone',
      'audit log entry',
    ]);
    const events = await auditEvents(String(receipt['auditEventId']));
    const erase = events.find((e) => e.id === receipt['auditEventId']);
    expect(erase?.subject).toBe(`sealpost.audit.vault.${T1}.contact_erase`);
    expect(JSON.stringify(receipt)).not.toMatch(/erase\.me|7911200321/);

    const gone = await call('revealContact', { tenantId: T1, contactId: id }, tokens['support'], PURPOSE);
    expect(gone.error?.code).toBe(grpc.status.NOT_FOUND);
    const find = await call<vaultV1.FindContactsResponse>(
      'findContacts',
      { tenantId: T1, by: { $case: 'email', value: 'erase.me@example.com' } },
      tokens['support'],
    );
    expect(find.response?.contacts).toEqual([]);
    // Dispatch is told the erased contact is missing, and gets nothing for it.
    const resolved = await resolveStream(dispatchClient, {
      tenantId: T1,
      purposeRef: 'cmp_after-erase',
      contactIds: [id],
    });
    expect(resolved.error).toBeUndefined();
    expect(resolved.batches.flatMap((b) => b.recipients)).toEqual([]);
    expect(resolved.batches.flatMap((b) => b.missingContactIds)).toEqual([id]);

    // The old copy still has the ciphertext; the live key store no longer has what opens it.
    const old = new Database(backup, { readonly: true });
    const row = old.prepare('SELECT record FROM contacts WHERE tenant_id = ? AND contact_id = ?').get(T1, id) as {
      record: Buffer;
    };
    old.close();
    expect(row.record.length).toBeGreaterThan(0);
    const keyDb = openSqliteKeyStore(path.join(dataDir, 'contact-vault-keys.sqlite'));
    try {
      const kms = await LocalKeyring.open(path.join(dataDir, 'kms', 'keyring.json'));
      const keys = new KeyHierarchy({
        kms,
        kmsKeyIdFor: kmsKeyIdResolver({ template: LOCAL_KMS_KEY_TEMPLATE }),
        tenantKeys: new SqliteTenantKeyStore(keyDb),
      });
      const cipher = new ContactCipher({ keys, dataKeys: new SqliteDataKeyStore(keyDb) });
      await expect(cipher.open(T1, id, row.record)).rejects.toMatchObject({ name: 'KeyNotFoundError' });
    } finally {
      keyDb.close();
    }
  });

  it('exports JSON only after an acknowledged audit event, for roles with contacts:export', async () => {
    const id = await upsert({ email: 'export.me@example.com', name: 'Ed' });
    const support = await call('exportContact', { tenantId: T1, contactId: id }, tokens['support'], PURPOSE);
    expect(support.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const ok = await call<vaultV1.ExportContactResponse>(
      'exportContact',
      { tenantId: T1, contactId: id },
      tokens['dpo'],
      PURPOSE,
    );
    expect(ok.error).toBeUndefined();
    const doc = JSON.parse(ok.response!.json) as Record<string, unknown>;
    expect(doc).toMatchObject({
      contactId: id,
      fields: { email: 'export.me@example.com', name: 'Ed' },
      auditEventId: ok.response!.auditEventId,
    });
    const events = await auditEvents(ok.response!.auditEventId);
    expect(events.find((e) => e.id === ok.response!.auditEventId)?.subject).toBe(
      `sealpost.audit.vault.${T1}.contact_export`,
    );
  });

  it('rotates the KEK as an operation and keeps every contact readable', async () => {
    const id = await upsert({ email: 'rotate.me@example.com' });
    const started = await call<vaultV1.Operation>(
      'rotateTenantKey',
      { tenantId: T1, keyKind: 'kek' },
      tokens['admin'],
      { 'x-sealpost-purpose': 'legal-hold' },
    );
    expect(started.error).toBeUndefined();
    const op = await waitOperation(started.response!.operationId, tokens['admin']!);
    expect(op).toMatchObject({ kind: 'rotate-tenant-key', done: true, errorReason: '' });
    expect(JSON.parse(op.result)).toMatchObject({ keyKind: 'kek', version: 2, retired: [1] });
    const ok = await call<vaultV1.RevealContactResponse>(
      'revealContact',
      { tenantId: T1, contactId: id },
      tokens['support'],
      PURPOSE,
    );
    expect(ok.response?.fields?.email).toBe('rotate.me@example.com');
  });

  it('enforces the per-principal reveal quota with RESOURCE_EXHAUSTED', async () => {
    const id = await upsert({ email: 'quota@example.com' });
    const codes: (number | undefined)[] = [];
    for (let i = 0; i < 31; i++) {
      const r = await call('revealContact', { tenantId: T1, contactId: id }, tokens['quota'], PURPOSE);
      codes.push(r.error?.code);
    }
    expect(codes.slice(0, 30).every((c) => c === undefined)).toBe(true);
    expect(codes[30]).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('counts exports against the same per-principal quota as reveals', async () => {
    const req = { tenantId: T1, contactId: await upsert({ email: 'quota.export@example.com' }) };
    for (let i = 0; i < 29; i++)
      expect((await call('revealContact', req, tokens['quotaDpo'], PURPOSE)).error).toBeUndefined();
    expect((await call('exportContact', req, tokens['quotaDpo'], PURPOSE)).error).toBeUndefined();
    for (const method of ['exportContact', 'revealContact']) {
      const over = await call(method, req, tokens['quotaDpo'], PURPOSE);
      expect(over.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    }
  });

  it('limits the addresses resolved per purpose: the batch over the limit is refused, other purposes go on', async () => {
    const ids = [
      await upsert({ email: 'purpose1@example.com' }),
      await upsert({ email: 'purpose2@example.com' }),
      await upsert({ email: 'purpose3@example.com' }),
    ];
    const request = { tenantId: T1, purposeRef: 'cmp_quota', contactIds: ids };
    const first = await resolveStream(dispatchClient, request);
    expect(first.error).toBeUndefined();
    // 3 of 5 taken; the second call's first batch (2) fits, its second (1 more) does not and is never sent.
    const second = await resolveStream(dispatchClient, request);
    expect(second.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(second.batches.flatMap((b) => b.recipients.map((r) => r.contactId))).toEqual(ids.slice(0, 2));
    const other = await resolveStream(dispatchClient, { ...request, purposeRef: 'cmp_quota-2' });
    expect(other.error).toBeUndefined();
    expect(other.batches.flatMap((b) => b.recipients)).toHaveLength(3);
  });

  it('refuses reveal, export and resolve with the bus down and returns no plaintext', async () => {
    const id = await upsert({ email: 'bus.down@example.com' });
    await bus.close();
    const r = await call<vaultV1.RevealContactResponse>(
      'revealContact',
      { tenantId: T1, contactId: id },
      tokens['support'],
      PURPOSE,
    );
    expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.reason).toBe('AUDIT_UNAVAILABLE');
    expect(r.response).toBeUndefined();
    expect(JSON.stringify(r.error)).not.toContain('bus.down');

    // Export and resolve fail closed the same way: no document, no batch.
    const exported = await call<vaultV1.ExportContactResponse>(
      'exportContact',
      { tenantId: T1, contactId: id },
      tokens['dpo'],
      PURPOSE,
    );
    expect([exported.error?.code, exported.reason]).toEqual([grpc.status.UNAVAILABLE, 'AUDIT_UNAVAILABLE']);
    expect(exported.response).toBeUndefined();
    const resolved = await resolveStream(dispatchClient, {
      tenantId: T1,
      purposeRef: 'cmp_bus-down',
      contactIds: [id],
    });
    expect([resolved.error?.code, resolved.reason]).toEqual([grpc.status.UNAVAILABLE, 'AUDIT_UNAVAILABLE']);
    expect(resolved.batches).toEqual([]);
  });

  it('records the product metrics of what it served, with ids and codes only as labels', async () => {
    expect(
      await recorded.sum('sealpost_vault_contacts_upserted_total', { tenant: T1, outcome: 'created' }),
    ).toBeGreaterThan(0);
    // The quota test's 30 granted reveals, its refused one, and the reveal refused with the bus down.
    const reveals = { tenant: T1, purpose: 'support-request' };
    expect(await recorded.sum('sealpost_vault_reveals_total', { ...reveals, outcome: 'ok' })).toBeGreaterThanOrEqual(
      30,
    );
    expect(await recorded.sum('sealpost_vault_reveals_total', { ...reveals, outcome: 'audit_unavailable' })).toBe(1);
    expect(await recorded.sum('sealpost_vault_resolved_total', { tenant: T1, outcome: 'ok' })).toBeGreaterThan(0);
    const all = await recorded.collect();
    const values = [...all.entries()]
      .filter(([name]) => name.startsWith('sealpost_vault_'))
      .flatMap(([, points]) => points.flatMap((p) => Object.values(p.attributes).map(String)));
    expect(values.filter((v) => /@|\+\d{6,}|\s/.test(v))).toEqual([]);
  });
});
