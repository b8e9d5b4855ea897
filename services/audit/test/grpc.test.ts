/**
 * The audit service end to end over real mutual TLS: events published on the embedded bus as contact-vault are
 * appended, then read back through the gRPC API with a dev-CA client certificate and a dev operator token.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openDevCa, openDevTokenIssuer, writeDevTlsFiles, type IssuedCertificate } from '@sealpost/access';
import {
  EmbeddedBus,
  TREE_HEAD_STREAM,
  auditSubject,
  createEnvelope,
  newEventId,
  type ServiceBus,
} from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { auditEventsV1, auditV1 } from '@sealpost/proto';
import { tempDir, type TempDir } from '@sealpost/testkit';
import {
  auditActionToken,
  leafHash,
  verifyConsistency,
  verifyInclusion,
  verifyTreeHeadJws,
} from '@sealpost/audit-format';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { AUDIT_LOG_ID, startAuditService, type RunningAuditService } from '../src/service';
import { auditPayload, eventually } from './bus-support';

const TENANT = 't-acme';
const OTHER_TENANT = 't-other';
const Client = grpc.makeGenericClientConstructor(auditV1.AuditLogService, 'AuditLog');
/** ts-proto's encoders expect complete messages: requests are completed with defaults first. */
const REQUEST_TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  getSignedTreeHead: auditV1.GetSignedTreeHeadRequest,
  getInclusionProof: auditV1.GetInclusionProofRequest,
  getConsistencyProof: auditV1.GetConsistencyProofRequest,
  getEntries: auditV1.GetEntriesRequest,
  queryEntries: auditV1.QueryEntriesRequest,
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

describe('audit gRPC API over mutual TLS (embedded bus)', () => {
  let dir: TempDir;
  let shared: EmbeddedBus;
  let auditBus: ServiceBus;
  let vaultBus: ServiceBus;
  let service: RunningAuditService;
  let client: grpc.Client;
  let token: string;
  let verifierToken: string;
  let dataDir: string;
  const contactIds = ['ct-100', 'ct-101', 'ct-102'];
  const eventIds: string[] = [];

  const call = <T>(method: string, request: object, bearer = token): Promise<Result<T>> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${bearer}`);
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        REQUEST_TYPES[method]!.fromPartial(request),
        md,
        { deadline: Date.now() + 5000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const publish = async (tenant: string, contactId: string): Promise<string> => {
    const id = newEventId();
    const action = 'contact.reveal';
    await vaultBus.publish(
      createEnvelope({
        id,
        type: 'audit.recorded',
        subject: auditSubject('contact-vault', tenant, auditActionToken(action)),
        tenant,
        aggregateId: tenant,
        aggregateVersion: 1,
        payload: auditPayload({ eventId: id, tenantId: tenant, action, resourceIds: [contactId] }),
      }),
    );
    return id;
  };

  beforeAll(async () => {
    dir = tempDir('sealpost-audit-grpc-');
    dataDir = path.join(dir.path, 'data');
    const pki = path.join(dir.path, 'pki');
    const serverTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'audit' });
    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli: IssuedCertificate = await ca.issue({ service: 'cli', usage: 'client' });
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    token = await issuer.issue({ tenant: TENANT, role: 'auditor', subject: 'op-auditor-1' });
    verifierToken = await issuer.issue({ tenant: TENANT, role: 'log-verifier', subject: 'op-verifier-1' });

    const config = loadConfig('audit', {
      SEALPOST_DATA_DIR: dataDir,
      SEALPOST_JWKS_FILE: path.join(issuerDir, 'jwks.json'),
      SEALPOST_TLS_CA_FILE: serverTls.caFile,
      SEALPOST_TLS_CERT_FILE: serverTls.certFile,
      SEALPOST_TLS_KEY_FILE: serverTls.keyFile,
      SEALPOST_AUDIT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_AUDIT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
    });
    expect(config.mode).toBe('embedded');
    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 50 });
    auditBus = shared.forService('audit');
    vaultBus = shared.forService('contact-vault');
    service = await startAuditService({ config, bus: auditBus, treeHeads: { everyEntries: 1 } });
    client = new Client(
      service.endpoint.grpc,
      grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(cli.keyPem), Buffer.from(cli.certPem)),
    );

    // One at a time, each appended and signed before the next: the appender takes whatever arrived as one batch,
    // and the tests below want a signed head at every size.
    const published = async (id: string): Promise<void> => {
      eventIds.push(id);
      await eventually(async () => {
        const r = await call<auditV1.SignedTreeHead>('getSignedTreeHead', { treeSize: '0' });
        return r.response !== undefined && Number(r.response.treeSize) >= eventIds.length;
      });
    };
    for (const c of contactIds) await published(await publish(TENANT, c));
    await published(await publish(OTHER_TENANT, 'ct-900'));
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await service?.stop(1000);
    await auditBus?.close();
    await vaultBus?.close();
    await shared?.close();
    dir?.cleanup();
  });

  it('serves a signed tree head whose JWS verifies with the service key', async () => {
    const { response, error } = await call<auditV1.SignedTreeHead>('getSignedTreeHead', { treeSize: '0' });
    expect(error).toBeUndefined();
    const head = response!;
    expect(Number(head.treeSize)).toBe(eventIds.length);
    const signer = await LocalEd25519Signer.fromFile(path.join(dataDir, 'audit', 'sth-signing.jwk.json'));
    const signed = await verifyTreeHeadJws(
      {
        logId: head.logId,
        treeSize: Number(head.treeSize),
        rootHash: head.rootHash.toString('hex'),
        timestamp: head.timestamp!.getTime(),
        jws: head.jws,
        kid: head.kid,
      },
      [await signer.publicJwk()],
    );
    expect(signed.treeSize).toBe(eventIds.length);
    // A tampered root no longer matches the signed payload.
    await expect(
      verifyTreeHeadJws(
        {
          logId: head.logId,
          treeSize: Number(head.treeSize),
          rootHash: '00'.repeat(32),
          timestamp: head.timestamp!.getTime(),
          jws: head.jws,
          kid: head.kid,
        },
        [await signer.publicJwk()],
      ),
    ).rejects.toMatchObject({ code: 'STH_PAYLOAD_MISMATCH' });
  });

  it('proves inclusion of an entry by id against the signed root', async () => {
    const entryId = eventIds[1]!;
    const { response, error } = await call<auditV1.InclusionProof>('getInclusionProof', {
      entry: { $case: 'entryId', value: entryId },
      treeSize: '0',
    });
    expect(error).toBeUndefined();
    const proof = response!;
    expect(proof.treeHead).toBeDefined();
    const size = Number(proof.treeSize);
    expect(size).toBe(Number(proof.treeHead!.treeSize));
    expect(() =>
      verifyInclusion(proof.leafHash, Number(proof.leafIndex), size, proof.hashes, proof.treeHead!.rootHash),
    ).not.toThrow();
    // The proof is bound to this leaf: another leaf hash does not lead to the root.
    expect(() =>
      verifyInclusion(
        leafHash(Buffer.from('x')),
        Number(proof.leafIndex),
        size,
        proof.hashes,
        proof.treeHead!.rootHash,
      ),
    ).toThrow();

    // And the leaf hash is that of the entry's canonical bytes as GetEntries returns them.
    const idx = Number(proof.leafIndex);
    const entries = await call<auditV1.GetEntriesResponse>(
      'getEntries',
      { start: String(idx), end: String(idx + 1) },
      verifierToken,
    );
    expect(entries.response!.entries[0]!.entryId).toBe(entryId);
    expect(leafHash(entries.response!.entries[0]!.canonical).equals(proof.leafHash)).toBe(true);
  });

  it('proves consistency between two signed sizes', async () => {
    const small = await call<auditV1.SignedTreeHead>('getSignedTreeHead', { treeSize: '2' });
    const large = await call<auditV1.SignedTreeHead>('getSignedTreeHead', { treeSize: '0' });
    expect(small.error).toBeUndefined();
    const { response, error } = await call<auditV1.ConsistencyProof>('getConsistencyProof', {
      firstSize: '2',
      secondSize: large.response!.treeSize,
    });
    expect(error).toBeUndefined();
    expect(() =>
      verifyConsistency(
        2,
        Number(large.response!.treeSize),
        small.response!.rootHash,
        large.response!.rootHash,
        response!.hashes,
      ),
    ).not.toThrow();
  });

  it("finds an entry by contact id within the caller's tenant, with page tokens", async () => {
    const byContact = await call<auditV1.QueryEntriesResponse>('queryEntries', {
      tenantId: TENANT,
      contactId: 'ct-101',
    });
    expect(byContact.error).toBeUndefined();
    expect(byContact.response!.entries.map((e) => e.entryId)).toEqual([eventIds[1]]);
    expect(byContact.response!.entries[0]!.sourceService).toBe('vault');

    const first = await call<auditV1.QueryEntriesResponse>('queryEntries', {
      tenantId: TENANT,
      page: { pageSize: 2, pageToken: '' },
    });
    expect(first.response!.entries).toHaveLength(2);
    expect(first.response!.nextPageToken).not.toBe('');
    const second = await call<auditV1.QueryEntriesResponse>('queryEntries', {
      tenantId: TENANT,
      page: { pageSize: 2, pageToken: first.response!.nextPageToken },
    });
    const all = [...first.response!.entries, ...second.response!.entries];
    expect(all.map((e) => e.entryId)).toEqual(eventIds.slice(0, 3));
    expect(all.every((e) => e.tenantId === TENANT)).toBe(true);
  });

  it("refuses raw entry ranges (every tenant's entries) to a tenant auditor; a log verifier reads them", async () => {
    const asAuditor = await call('getEntries', { start: '0', end: '10' });
    expect(asAuditor.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const asVerifier = await call<auditV1.GetEntriesResponse>('getEntries', { start: '0', end: '10' }, verifierToken);
    expect(asVerifier.error).toBeUndefined();
    expect(asVerifier.response!.entries.map((e) => e.entryId)).toEqual(eventIds);
    expect(new Set(asVerifier.response!.entries.map((e) => e.tenantId))).toEqual(new Set([TENANT, OTHER_TENANT]));
  });

  it('publishes every signed tree head on sealpost.treehead.<logId>.signed, as stored', async () => {
    const large = await call<auditV1.SignedTreeHead>('getSignedTreeHead', { treeSize: '0' });
    const messages = shared.read(TREE_HEAD_STREAM);
    expect(messages.length).toBeGreaterThanOrEqual(eventIds.length);
    for (const m of messages) expect(m.subject).toBe(`sealpost.treehead.${AUDIT_LOG_ID}.signed`);
    const published = messages.map((m) => auditEventsV1.TreeHeadSigned.decode(m.payload));
    const newest = published.find((h) => h.jws === large.response!.jws);
    expect(newest).toMatchObject({ logId: AUDIT_LOG_ID, treeSize: large.response!.treeSize, kid: large.response!.kid });
    expect(newest!.rootHash.equals(large.response!.rootHash)).toBe(true);
    // A head at every size 0…n was signed and published (everyEntries: 1).
    expect(new Set(published.map((h) => Number(h.treeSize)))).toEqual(
      new Set(Array.from({ length: eventIds.length + 1 }, (_, i) => i)),
    );
  });

  it("refuses another tenant's query and a query without a tenant", async () => {
    const other = await call('queryEntries', { tenantId: OTHER_TENANT, contactId: 'ct-900' });
    expect(other.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const none = await call('queryEntries', { contactId: 'ct-900' });
    expect(none.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(none.error?.details).toContain('tenant_id');
  });

  it('answers OUT_OF_RANGE for indices and sizes beyond the log, INVALID_ARGUMENT for a missing entry', async () => {
    const index = await call('getInclusionProof', { entry: { $case: 'leafIndex', value: '10000' }, treeSize: '0' });
    expect(index.error?.code).toBe(grpc.status.OUT_OF_RANGE);
    const size = await call('getInclusionProof', { entry: { $case: 'leafIndex', value: '0' }, treeSize: '10000' });
    expect(size.error?.code).toBe(grpc.status.OUT_OF_RANGE);
    const sth = await call('getSignedTreeHead', { treeSize: '10000' });
    expect(sth.error?.code).toBe(grpc.status.OUT_OF_RANGE);
    const missing = await call('getInclusionProof', { treeSize: '0' });
    expect(missing.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(missing.error?.details).toContain('entry');
  });

  it('refuses a call without an operator token', async () => {
    const r = await call('getSignedTreeHead', { treeSize: '0' }, 'not-a-token');
    expect(r.error?.code).toBe(grpc.status.UNAUTHENTICATED);
  });
});

describe('startAuditService in production', () => {
  it('refuses to start without a KMS tree-head signer, before opening anything', async () => {
    const dir = tempDir('sealpost-audit-prod-');
    try {
      const config = { ...loadConfig('audit', { SEALPOST_DATA_DIR: dir.path }), mode: 'production' as const };
      const shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'));
      try {
        await expect(startAuditService({ config, bus: shared.forService('audit') })).rejects.toMatchObject({
          code: 'AUDIT_SIGNER_NOT_CONFIGURED',
        });
      } finally {
        await shared.close();
      }
      expect(existsSync(path.join(dir.path, 'audit'))).toBe(false);
    } finally {
      dir.cleanup();
    }
  });
});
