/**
 * The contact vault end to end over real mutual TLS (dev CA client certificate + dev operator tokens), on SQLite
 * with the embedded bus: upsert with request-id idempotency, bidi import, masked get/list, audited find, tenant
 * isolation, and error statuses with stable reasons that never echo a value.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openDevCa, openDevTokenIssuer, writeDevTlsFiles, type IssuedCertificate } from '@sealpost/access';
import { EmbeddedBus, type ReceivedEvent, type ServiceBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { auditEventsV1, vaultV1 } from '@sealpost/proto';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { startContactVaultService, type RunningContactVaultService } from '../src/service';
import {
  MAX_IMPORT_MESSAGE_FIELD_BYTES,
  MAX_IMPORT_ROWS_PER_MESSAGE,
} from '../src/adapters/grpc/contact-vault-handlers';

const T1 = 't-acme';
const T2 = 't-globex';
const Client = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');
const REQUEST_TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  upsertContact: vaultV1.UpsertContactRequest,
  getContact: vaultV1.GetContactRequest,
  listContacts: vaultV1.ListContactsRequest,
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

describe('contact vault gRPC API over mutual TLS (SQLite, embedded bus)', () => {
  let dir: TempDir;
  let shared: EmbeddedBus;
  let bus: ServiceBus;
  let service: RunningContactVaultService;
  let client: grpc.Client;
  const tokens: Record<string, string> = {};

  const metadata = (token: string, extra: Record<string, string> = {}): grpc.Metadata => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    for (const [k, v] of Object.entries(extra)) md.set(k, v);
    return md;
  };

  const call = <T>(method: string, request: object, token: string): Promise<Result<T>> =>
    new Promise((resolve) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        REQUEST_TYPES[method]!.fromPartial(request),
        metadata(token),
        { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const importRows = (
    rows: vaultV1.DeepPartial<vaultV1.ImportContactsRequest>[],
    token: string,
  ): Promise<{ results: vaultV1.ImportContactsResponse[]; error?: grpc.ServiceError; reason?: string }> =>
    new Promise((resolve) => {
      const stream = (
        client as unknown as {
          importContacts: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, vaultV1.ImportContactsResponse>;
        }
      ).importContacts(metadata(token));
      const results: vaultV1.ImportContactsResponse[] = [];
      stream.on('data', (r: vaultV1.ImportContactsResponse) => results.push(r));
      stream.on('error', (error: grpc.ServiceError) => {
        const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
        resolve({ results, error, reason: typeof reason === 'string' ? reason : undefined });
      });
      stream.on('end', () => resolve({ results }));
      for (const row of rows) stream.write(vaultV1.ImportContactsRequest.fromPartial(row));
      stream.end();
    });

  const readEvents = async (as: 'anomaly' | 'audit', domain: 'vault' | 'audit', expected: number) => {
    const reader = shared.forService(as);
    const seen: ReceivedEvent[] = [];
    const sub = await reader.consume({ durable: `r_${domain}_${Date.now()}`, domain }, (e) => void seen.push(e));
    const until = Date.now() + 15_000;
    while (seen.length < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    await sub.stop();
    await reader.close();
    return seen;
  };

  beforeAll(async () => {
    dir = tempDir('sealpost-vault-grpc-');
    const pki = path.join(dir.path, 'pki');
    const serverTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'contact-vault' });
    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli: IssuedCertificate = await ca.issue({ service: 'cli', usage: 'client' });
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    tokens['marketer'] = await issuer.issue({ tenant: T1, role: 'marketer', subject: 'op-marketer-1' });
    tokens['support'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-support-1' });
    tokens['otherTenant'] = await issuer.issue({ tenant: T2, role: 'marketer', subject: 'op-globex-1' });
    tokens['auditor'] = await issuer.issue({ tenant: T1, role: 'auditor', subject: 'op-auditor-1' });

    const config = loadConfig('contact-vault', {
      SEALPOST_DATA_DIR: path.join(dir.path, 'data'),
      SEALPOST_JWKS_FILE: path.join(issuerDir, 'jwks.json'),
      SEALPOST_TLS_CA_FILE: serverTls.caFile,
      SEALPOST_TLS_CERT_FILE: serverTls.certFile,
      SEALPOST_TLS_KEY_FILE: serverTls.keyFile,
      SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
    });
    expect(config.store.kind).toBe('sqlite');
    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    const auditBus = shared.forService('audit');
    await auditBus.ensureStreams();
    await auditBus.close();
    bus = shared.forService('contact-vault');
    service = await startContactVaultService({ config, bus, relayPollMs: 20 });
    client = new Client(
      service.endpoint.grpc,
      grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(cli.keyPem), Buffer.from(cli.certPem)),
    );
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await service?.stop(1000);
    await bus?.close();
    await shared?.close();
    dir?.cleanup();
  });

  it('upserts once per request id, dedupes, relays the event, and reads masked', async () => {
    const request = {
      tenantId: T1,
      fields: { email: ' Jane.Doe@Example.COM ', name: 'Jane' },
      requestId: 'req-0001-abc',
    };
    const first = await call<vaultV1.UpsertContactResponse>('upsertContact', request, tokens['marketer']!);
    expect(first.error).toBeUndefined();
    expect(first.response).toMatchObject({ created: true, version: '1' });
    const retry = await call<vaultV1.UpsertContactResponse>('upsertContact', request, tokens['marketer']!);
    expect(retry.response).toEqual(first.response);
    const reused = await call(
      'upsertContact',
      { ...request, fields: { email: 'other@example.com' } },
      tokens['marketer']!,
    );
    expect(reused.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(reused.reason).toBe('REQUEST_ID_REUSED');
    const same = await call<vaultV1.UpsertContactResponse>(
      'upsertContact',
      { tenantId: T1, fields: { email: 'jane.doe@example.com' } },
      tokens['marketer']!,
    );
    expect(same.response).toEqual({ ...first.response, created: false });

    const contactId = first.response!.contactId;
    const got = await call<vaultV1.GetContactResponse>('getContact', { tenantId: T1, contactId }, tokens['marketer']!);
    expect(got.response?.contact).toMatchObject({
      contactId,
      tenantId: T1,
      emailMasked: 'j***@e***.com',
      nameMasked: 'J***',
      phoneMasked: '',
      version: '1',
    });

    const events = await readEvents('anomaly', 'vault', 1);
    expect(events.map((e) => [e.type, e.aggregateId, e.aggregateVersion])).toEqual([
      ['vault.contact.upserted', contactId, 1],
    ]);
    expect(events[0]!.subject).toBe(`sealpost.vault.${T1}.contact_upserted`);
  });

  it('keeps tenants apart and denies roles without the permission', async () => {
    const { response } = await call<vaultV1.UpsertContactResponse>(
      'upsertContact',
      { tenantId: T1, fields: { phone: '+44 7911 123456' } },
      tokens['marketer']!,
    );
    const contactId = response!.contactId;
    const foreign = await call('getContact', { tenantId: T1, contactId }, tokens['otherTenant']!);
    expect(foreign.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(foreign.reason).toBe('TENANT_MISMATCH');
    const ownTenant = await call('getContact', { tenantId: T2, contactId }, tokens['otherTenant']!);
    expect(ownTenant.error?.code).toBe(grpc.status.NOT_FOUND);
    const auditor = await call('getContact', { tenantId: T1, contactId }, tokens['auditor']!);
    expect(auditor.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const marketerFind = await call(
      'findContacts',
      { tenantId: T1, by: { $case: 'phone', value: '+447911123456' } },
      tokens['marketer']!,
    );
    expect(marketerFind.error?.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('answers bad input and conflicts with stable reasons and no value', async () => {
    const bad = await call(
      'upsertContact',
      { tenantId: T1, fields: { email: 'secretvalue-at-example' } },
      tokens['marketer']!,
    );
    expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/^email: /);
    expect(bad.error?.details).not.toContain('secretvalue');
    const a = await call<vaultV1.UpsertContactResponse>(
      'upsertContact',
      { tenantId: T1, fields: { email: 'a@example.org', phone: '+44 7911 200001' } },
      tokens['marketer']!,
    );
    const b = await call<vaultV1.UpsertContactResponse>(
      'upsertContact',
      { tenantId: T1, fields: { email: 'b@example.org', phone: '+44 7911 200002' } },
      tokens['marketer']!,
    );
    expect(a.response?.created && b.response?.created).toBe(true);
    const conflict = await call(
      'upsertContact',
      { tenantId: T1, fields: { email: 'a@example.org', phone: '+44 7911 200002' } },
      tokens['marketer']!,
    );
    expect(conflict.error?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(conflict.reason).toBe('DEDUPE_CONFLICT');
    expect(conflict.error?.details).not.toMatch(/example\.org|7911/);
  });

  it('imports rows in chunks over a bidi stream, one response per message, and refuses another tenant', async () => {
    const rows = [
      { row: '1', fields: { email: 'imp1@example.net' } },
      { row: '2', fields: { email: 'imp2@example.net', phone: '+44 7911 200102' } },
      { row: '3', fields: { email: 'IMP1@example.net' } },
      { row: '4', fields: { phone: 'secretvalue' } },
    ];
    const first = await importRows(
      [
        { tenantId: T1, rows: rows.slice(0, 3) },
        { tenantId: T1, rows: rows.slice(3) },
      ],
      tokens['marketer']!,
    );
    expect(first.error).toBeUndefined();
    // Each request message is answered by one response holding its rows' results, in row order.
    expect(first.results.map((m) => m.results.map((r) => [r.row, r.result, r.reason, r.field]))).toEqual([
      [
        ['1', 'created', '', ''],
        ['2', 'created', '', ''],
        ['3', 'unchanged', '', ''],
      ],
      [['4', 'rejected', 'INVALID_ARGUMENT', 'phone']],
    ]);
    const again = await importRows([{ tenantId: T1, rows }], tokens['marketer']!);
    expect(again.results.map((m) => m.results.map((r) => r.result))).toEqual([
      ['unchanged', 'unchanged', 'unchanged', 'rejected'],
    ]);
    const mixed = await importRows(
      [
        { tenantId: T1, rows: rows.slice(0, 1) },
        { tenantId: T2, rows: rows.slice(1, 2) },
      ],
      tokens['marketer']!,
    );
    expect(mixed.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(mixed.reason).toBe('TENANT_MISMATCH');
  });

  it('refuses an import message with no rows, too many rows or too many bytes, naming `rows` and no value', async () => {
    const row = (i: number, heavy = '') => ({
      row: String(i),
      fields: { email: `cap${i}@example.net`, phone: heavy.replace(/n/g, '5'), name: heavy },
    });
    const tooMany = Array.from({ length: MAX_IMPORT_ROWS_PER_MESSAGE + 1 }, (_, i) => row(i + 1));
    // Every field is within the per-field bound (1,024 bytes); only the message as a whole is too large.
    const heavy = 'n'.repeat(1000);
    const perRow = 2 * heavy.length + Buffer.byteLength(row(1).fields.email);
    const tooHeavy = Array.from({ length: Math.ceil(MAX_IMPORT_MESSAGE_FIELD_BYTES / perRow) + 1 }, (_, i) =>
      row(i + 1, heavy),
    );
    expect(tooHeavy.length).toBeLessThanOrEqual(MAX_IMPORT_ROWS_PER_MESSAGE);
    for (const bad of [[], tooMany, tooHeavy]) {
      const refused = await importRows([{ tenantId: T2, rows: bad }], tokens['otherTenant']!);
      expect(refused.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refused.reason).toBe('INVALID_ARGUMENT');
      expect(refused.error?.details).toMatch(/^rows: /);
      expect(refused.error?.details).not.toMatch(/example\.net|nnnn|5555/);
      expect(refused.results).toEqual([]);
    }
    // Nothing of a refused message was written: the same rows, at the bound, are all new.
    const atBound = await importRows(
      [{ tenantId: T2, rows: tooMany.slice(0, MAX_IMPORT_ROWS_PER_MESSAGE) }],
      tokens['otherTenant']!,
    );
    expect(atBound.error).toBeUndefined();
    expect(atBound.results).toHaveLength(1);
    expect(new Set(atBound.results[0]!.results.map((r) => r.result))).toEqual(new Set(['created']));
    expect(atBound.results[0]!.results).toHaveLength(MAX_IMPORT_ROWS_PER_MESSAGE);
  });

  it('lists with page tokens and finds through the blind index with an audit event', async () => {
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await call<vaultV1.ListContactsResponse>(
        'listContacts',
        { tenantId: T1, page: { pageSize: 2, pageToken } },
        tokens['marketer']!,
      );
      expect(page.error).toBeUndefined();
      seen.push(...page.response!.contacts.map((c) => c.contactId));
      pageToken = page.response!.nextPageToken;
    } while (pageToken);
    expect(seen.length).toBeGreaterThanOrEqual(6);
    expect(new Set(seen).size).toBe(seen.length);

    const found = await call<vaultV1.FindContactsResponse>(
      'findContacts',
      { tenantId: T1, by: { $case: 'email', value: 'Imp2@Example.net' } },
      tokens['support']!,
    );
    expect(found.error).toBeUndefined();
    expect(found.response!.contacts).toHaveLength(1);
    expect(found.response!.contacts[0]).toMatchObject({ emailMasked: 'i***@e***.net', phoneMasked: '+44 ******102' });
    const audits = await readEvents('audit', 'audit', 1);
    expect(audits).toHaveLength(1);
    expect(audits[0]!.subject).toBe(`sealpost.audit.vault.${T1}.contact_find`);
    expect(auditEventsV1.AuditEvent.decode(audits[0]!.payload)).toMatchObject({
      eventId: audits[0]!.id,
      action: 'contact.find',
      actor: { $case: 'operatorId', value: 'op-support-1' },
      resourceIds: [found.response!.contacts[0]!.contactId],
    });
  });
});
