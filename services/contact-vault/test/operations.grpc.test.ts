/**
 * The vault service's long-running work over real mutual TLS on SQLite with the embedded bus and the real audit
 * service beside it: request ids on RotateTenantKey and EraseContact (a retry is the same operation, never another
 * key version), key events relayed from the operations outbox, and the scheduled retention sweep (erases, logs counts
 * without personal data, counts a metric, holds its lease).
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { openDevCa, openDevTokenIssuer, writeDevTlsFiles, type IssuedCertificate } from '@sealpost/access';
import { EmbeddedBus, type ReceivedEvent, type ServiceBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { eventsV1, vaultV1 } from '@sealpost/proto';
import { createLogger, startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { startContactVaultService, type RunningContactVaultService } from '../src/service';
import { freePort, startAuditPeer, type AuditPeer } from './support/audit-peer';

const T1 = 't-ops';
const Client = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');
const TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  upsertContact: vaultV1.UpsertContactRequest,
  eraseContact: vaultV1.EraseContactRequest,
  getContact: vaultV1.GetContactRequest,
  getOperation: vaultV1.GetOperationRequest,
  rotateTenantKey: vaultV1.RotateTenantKeyRequest,
};
const LEGAL_HOLD = { 'x-sealpost-purpose': 'legal-hold' };
const SUPPORT = { 'x-sealpost-purpose': 'support-request', 'x-sealpost-ticket': 'SUP-4321' };

interface Result<T> {
  response?: T;
  error?: grpc.ServiceError;
  reason?: string;
}

describe('contact vault operations and the scheduled retention sweep (SQLite, embedded bus)', () => {
  let dir: TempDir;
  let dataDir: string;
  let shared: EmbeddedBus;
  let bus: ServiceBus;
  let service: RunningContactVaultService;
  let audit: AuditPeer;
  let client: grpc.Client;
  let recorded: TestMetrics;
  const logLines: string[] = [];
  const tokens: Record<string, string> = {};

  const call = <T>(
    method: string,
    request: object,
    token: string,
    extra: Record<string, string> = {},
  ): Promise<Result<T>> =>
    new Promise((resolve) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      for (const [k, v] of Object.entries(extra)) m.set(k, v);
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        TYPES[method]!.fromPartial(request),
        m,
        { deadline: Date.now() + 20_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const upsert = async (email: string): Promise<string> => {
    const r = await call<vaultV1.UpsertContactResponse>(
      'upsertContact',
      { tenantId: T1, fields: { email } },
      tokens['admin']!,
    );
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

  /** The highest key version of the tenant, read from the key store file (wrapped keys only). */
  const latestKeyVersion = (purpose: 'kek' | 'index'): number => {
    const db = new Database(path.join(dataDir, 'contact-vault-keys.sqlite'), { readonly: true });
    try {
      return db
        .prepare('SELECT MAX(version) FROM tenant_keys WHERE tenant_id = ? AND purpose = ?')
        .pluck()
        .get(T1, purpose) as number;
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    recorded = startTestMetrics();
    dir = tempDir('sealpost-vault-ops-');
    dataDir = path.join(dir.path, 'data');
    const pki = path.join(dir.path, 'pki');
    const serverTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'contact-vault' });
    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli: IssuedCertificate = await ca.issue({ service: 'cli', usage: 'client' });
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    tokens['admin'] = await issuer.issue({ tenant: T1, role: 'admin', subject: 'op-admin-9', mfa: true });
    tokens['dpo'] = await issuer.issue({ tenant: T1, role: 'dpo', subject: 'op-dpo-9', mfa: true });

    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
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
      SEALPOST_VAULT_RETENTION_DAYS: '30',
      SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS: '1',
    });
    bus = shared.forService('contact-vault');
    const logger = createLogger({
      service: 'contact-vault',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString('utf8'));
          cb();
        },
      }),
    });
    service = await startContactVaultService({ config, bus, logger, relayPollMs: 20, retentionLeaseTtlMs: 3000 });
    client = new Client(
      service.endpoint.grpc,
      grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(cli.keyPem), Buffer.from(cli.certPem)),
    );
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await service?.stop(1000);
    await bus?.close().catch(() => undefined);
    await audit?.stop();
    await shared?.close();
    dir?.cleanup();
    await recorded.shutdown();
  });

  it('RotateTenantKey honours request ids: a retry is the same operation and one new version; reuse is refused', async () => {
    await upsert('rotate.ops@example.com');
    const before = latestKeyVersion('kek');
    const request = { tenantId: T1, keyKind: 'kek', requestId: 'rot-req-0001' };
    const first = await call<vaultV1.Operation>('rotateTenantKey', request, tokens['admin']!, LEGAL_HOLD);
    expect(first.error).toBeUndefined();
    const op = await waitOperation(first.response!.operationId, tokens['admin']!);
    expect(op).toMatchObject({ done: true, errorReason: '' });
    const retry = await call<vaultV1.Operation>('rotateTenantKey', request, tokens['admin']!, LEGAL_HOLD);
    expect(retry.error).toBeUndefined();
    expect(retry.response!.operationId).toBe(first.response!.operationId);
    expect(latestKeyVersion('kek')).toBe(before + 1);
    // The id in metadata instead of the message is the same request.
    const viaMetadata = await call<vaultV1.Operation>(
      'rotateTenantKey',
      { tenantId: T1, keyKind: 'kek' },
      tokens['admin']!,
      { ...LEGAL_HOLD, 'x-sealpost-request-id': 'rot-req-0001' },
    );
    expect(viaMetadata.response?.operationId).toBe(first.response!.operationId);

    const reused = await call('rotateTenantKey', { ...request, keyKind: 'index' }, tokens['admin']!, LEGAL_HOLD);
    expect([reused.error?.code, reused.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'REQUEST_ID_REUSED']);
    expect(latestKeyVersion('index')).toBe(1);
    expect(latestKeyVersion('kek')).toBe(before + 1);
  });

  it('EraseContact honours request ids: a retry is the same operation; reuse for another contact is refused', async () => {
    const id = await upsert('erase.ops@example.com');
    const other = await upsert('keep.ops@example.com');
    const request = { tenantId: T1, contactId: id, requestId: 'erase-req-0001' };
    const first = await call<vaultV1.Operation>('eraseContact', request, tokens['dpo']!, SUPPORT);
    expect(first.error).toBeUndefined();
    const retry = await call<vaultV1.Operation>('eraseContact', request, tokens['dpo']!, SUPPORT);
    expect(retry.response?.operationId).toBe(first.response!.operationId);
    const reused = await call('eraseContact', { ...request, contactId: other }, tokens['dpo']!, SUPPORT);
    expect([reused.error?.code, reused.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'REQUEST_ID_REUSED']);
    expect((await waitOperation(first.response!.operationId, tokens['dpo']!)).errorReason).toBe('');
    const kept = await call('getContact', { tenantId: T1, contactId: other }, tokens['dpo']!);
    expect(kept.error).toBeUndefined();
  });

  it('publishes the key events of its rotations from the operations outbox', async () => {
    const started = await call<vaultV1.Operation>(
      'rotateTenantKey',
      { tenantId: T1, keyKind: 'index' },
      tokens['admin']!,
      LEGAL_HOLD,
    );
    expect((await waitOperation(started.response!.operationId, tokens['admin']!)).errorReason).toBe('');
    const reader = shared.forService('anomaly');
    const seen: ReceivedEvent[] = [];
    const sub = await reader.consume({ durable: `ops_${Date.now()}`, domain: 'vault', batch: 256 }, (e) => {
      if (e.type.startsWith('vault.tenant_key.')) seen.push(e);
    });
    const until = Date.now() + 15_000;
    while (seen.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    await sub.stop();
    await reader.close();
    const summary = seen.map((e) => [e.type, e.aggregateId, e.aggregateVersion]);
    expect(summary).toEqual(
      expect.arrayContaining([
        ['vault.tenant_key.rotated', `${T1}:key:kek`, 3],
        ['vault.tenant_key.retired', `${T1}:key:kek`, 4],
        ['vault.tenant_key.rotated', `${T1}:key:index`, 3],
        ['vault.tenant_key.retired', `${T1}:key:index`, 4],
      ]),
    );
    const retired = seen.find((e) => e.type === 'vault.tenant_key.retired' && e.aggregateId.endsWith(':index'))!;
    expect(eventsV1.TenantKeyRetired.decode(retired.payload)).toMatchObject({
      tenantId: T1,
      keyKind: 'index',
      currentVersion: 2,
      retiredVersions: [1],
    });
  });

  it('sweeps on its schedule under its lease: inactive contacts erased, counts logged and counted', async () => {
    const stale = [await upsert('stale.one@example.com'), await upsert('stale.two@example.com')];
    const fresh = await upsert('fresh.one@example.com');
    // Thirty days cannot pass in a test: the contacts' last activity is moved back in the contact store instead.
    const db = new Database(path.join(dataDir, 'contact-vault.sqlite'));
    try {
      const update = db.prepare('UPDATE contacts SET last_activity_at = ? WHERE tenant_id = ? AND contact_id = ?');
      for (const id of stale) update.run(Date.now() - 31 * 86_400_000, T1, id);
    } finally {
      db.close();
    }
    const until = Date.now() + 30_000;
    const gone = async (id: string): Promise<boolean> =>
      (await call('getContact', { tenantId: T1, contactId: id }, tokens['dpo']!)).error?.code === grpc.status.NOT_FOUND;
    while (!((await gone(stale[0]!)) && (await gone(stale[1]!))) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([await gone(stale[0]!), await gone(stale[1]!), await gone(fresh)]).toEqual([true, true, false]);

    // The erasures complete with their audit proofs; the sweep then logs and counts them.
    const swept = async (): Promise<Record<string, unknown>[]> =>
      logLines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l['msg'] === 'retention sweep' && Number(l['erased']) > 0);
    while ((await swept()).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const [line] = await swept();
    expect(line).toMatchObject({ due: 2, erased: 2, failed: 0, tenants: { [T1]: { days: 30, due: 2, erased: 2 } } });
    expect(await recorded.sum('sealpost_vault_retention_erased_total', { tenant: T1, outcome: 'erased' })).toBe(2);
    const lease = await recorded.points('sealpost_lease_held');
    expect(lease.find((p) => p.attributes['lease'] === 'retention:contact-vault')?.value).toBe(1);
    // Counts and tenant ids only: no address, and no contact id, in any log line.
    const logged = logLines.join('\n');
    expect(logged).not.toMatch(/@example\.com|stale\.|fresh\./);
    for (const id of [...stale, fresh]) expect(logged).not.toContain(id);
  }, 60_000);
});
