/**
 * Two contact-vault replicas over one MongoDB-wire database (FerretDB): per-principal quotas are one limit across
 * both, and a request id retried on the other replica (or sent to both at once) upserts once. Real mutual TLS, real
 * dev tokens; the bus is the embedded one, shared by both replicas.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openDevCa, openDevTokenIssuer, writeDevTlsFiles } from '@sealpost/access';
import { EmbeddedBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { vaultV1 } from '@sealpost/proto';
import { connectMongo, type MongoHandle } from '@sealpost/storage';
import { freshDatabaseName } from '@sealpost/storage/testing';
import { describeWithPeer, requirePeer, tempDir, type TempDir } from '@sealpost/testkit';
import { keyStoreDatabaseOf } from '../src/adapters/mongo/mongo-key-store';
import { startContactVaultService, type RunningContactVaultService } from '../src/service';

const T1 = 't-acme';
const Client = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');
const TYPES: Record<string, { fromPartial(o: object): unknown }> = {
  upsertContact: vaultV1.UpsertContactRequest,
  revealContact: vaultV1.RevealContactRequest,
  findContacts: vaultV1.FindContactsRequest,
};
const PURPOSE = { 'x-sealpost-purpose': 'support-request', 'x-sealpost-ticket': 'SUP-2001' };
const REVEAL_LIMIT = 4;
const FIND_LIMIT = 6;

interface Result<T> {
  response?: T;
  error?: grpc.ServiceError;
  reason?: string;
}

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

describeWithPeer('mongo', 'contact vault: two replicas on one MongoDB-wire database', () => {
  let dir: TempDir;
  let database: string;
  let bus: EmbeddedBus;
  let mongo: MongoHandle;
  const replicas: RunningContactVaultService[] = [];
  const clients: grpc.Client[] = [];
  const tokens: Record<string, string> = {};

  const call = <T>(
    replica: number,
    method: string,
    request: object,
    token: string,
    extra: Record<string, string> = {},
  ): Promise<Result<T>> =>
    new Promise((resolve) => {
      const client = clients[replica]!;
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      for (const [k, v] of Object.entries(extra)) md.set(k, v);
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(
        client,
        TYPES[method]!.fromPartial(request),
        md,
        { deadline: Date.now() + 20_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (!error) return resolve({ response });
          const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
          resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
        },
      );
    });

  const upsert = async (replica: number, fields: object, requestId?: string) =>
    call<vaultV1.UpsertContactResponse>(
      replica,
      'upsertContact',
      { tenantId: T1, fields, ...(requestId ? { requestId } : {}) },
      tokens['marketer']!,
    );

  beforeAll(async () => {
    dir = tempDir('sealpost-vault-replicas-');
    const pki = path.join(dir.path, 'pki');
    const serverTls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'contact-vault' });
    const ca = await openDevCa({ dir: pki, mode: 'test' });
    const cli = await ca.issue({ service: 'cli', usage: 'client' });
    const issuerDir = path.join(dir.path, 'identity');
    const issuer = await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    tokens['marketer'] = await issuer.issue({ tenant: T1, role: 'marketer', subject: 'op-mkt-1' });
    tokens['support'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-support-1', mfa: true });
    tokens['support2'] = await issuer.issue({ tenant: T1, role: 'support', subject: 'op-support-2', mfa: true });

    const url = requirePeer('mongo').url;
    database = freshDatabaseName('vault_replicas');
    mongo = await connectMongo({ url, database, appName: 'vault-replicas-test', serverSelectionTimeoutMs: 5000 });
    bus = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    const auditBus = bus.forService('audit');
    await auditBus.ensureStreams();
    await auditBus.close();

    // Started one after the other, with a first contact written in between: the local keyring (the embedded-mode
    // stand-in for KMS) is read at start-up, so the tenant's keyring key must exist before the second replica starts.
    // Replicas in production share AWS KMS instead.
    for (let i = 0; i < 2; i++) {
      if (i === 1) expect((await upsert(0, { email: 'first@example.com' })).error).toBeUndefined();
      const config = loadConfig('contact-vault', {
        SEALPOST_DATA_DIR: path.join(dir.path, 'data'),
        SEALPOST_STORE: 'mongo',
        SEALPOST_MONGO_URL: url,
        SEALPOST_MONGO_DATABASE: database,
        SEALPOST_JWKS_FILE: path.join(issuerDir, 'jwks.json'),
        SEALPOST_TLS_CA_FILE: serverTls.caFile,
        SEALPOST_TLS_CERT_FILE: serverTls.certFile,
        SEALPOST_TLS_KEY_FILE: serverTls.keyFile,
        SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
        SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
        SEALPOST_VAULT_REVEAL_QUOTA: `${REVEAL_LIMIT}/3600`,
        SEALPOST_VAULT_FIND_QUOTA: `${FIND_LIMIT}/3600`,
      });
      expect(config.store.kind).toBe('mongo');
      const service = await startContactVaultService({ config, bus: bus.forService('contact-vault'), relayPollMs: 20 });
      replicas.push(service);
      clients.push(
        new Client(
          service.endpoint.grpc,
          grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(cli.keyPem), Buffer.from(cli.certPem)),
        ),
      );
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const r of replicas) await r.stop(1000);
    await bus?.close();
    await mongo?.client.db(keyStoreDatabaseOf(database)).dropDatabase();
    await mongo?.db.dropDatabase();
    await mongo?.close();
    dir?.cleanup();
  });

  it('upserts once when the same request id reaches both replicas, and answers retries on either', async () => {
    const contactsBefore = await mongo.db.collection('contacts').countDocuments({});
    const request = { email: 'twice@example.com', name: 'Twice' };
    const [a, b] = await Promise.all([upsert(0, request, 'req-replicas-001'), upsert(1, request, 'req-replicas-001')]);
    expect(a.error).toBeUndefined();
    expect(b.error).toBeUndefined();
    expect(b.response).toEqual(a.response);
    expect(a.response).toMatchObject({ created: true, version: '1' });
    expect(contactsBefore).toBe(1);
    // A retry on either replica gets the first answer; without the request id the contact is only found again.
    expect((await upsert(1, request, 'req-replicas-001')).response).toEqual(a.response);
    expect((await upsert(0, request, 'req-replicas-001')).response).toEqual(a.response);
    expect((await upsert(1, request)).response).toEqual({ ...a.response, created: false });
    const reused = await upsert(1, { email: 'other@example.com' }, 'req-replicas-001');
    expect([reused.error?.code, reused.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'REQUEST_ID_REUSED']);

    // One more contact, at version 1: the mutation ran once. The shared records hold no address, name or id.
    expect(await mongo.db.collection('contacts').countDocuments({})).toBe(contactsBefore + 1);
    const records = JSON.stringify(await mongo.db.collection('idempotency').find({}).toArray());
    expect(records).toContain(a.response!.contactId);
    for (const value of ['twice@example.com', 'Twice', 'req-replicas-001', 'op-mkt-1']) {
      expect(records).not.toContain(value);
    }
  });

  it("draws a principal's reveal quota from one limit across both replicas", async () => {
    const { response } = await upsert(0, { email: 'quota.replicas@example.com' });
    const reveal = (replica: number, token: string) =>
      call<vaultV1.RevealContactResponse>(
        replica,
        'revealContact',
        { tenantId: T1, contactId: response!.contactId },
        token,
        PURPOSE,
      );
    const codes: (number | undefined)[] = [];
    for (let i = 0; i < REVEAL_LIMIT; i++) codes.push((await reveal(i % 2, tokens['support']!)).error?.code);
    expect(codes).toEqual(Array(REVEAL_LIMIT).fill(undefined));
    for (const replica of [0, 1]) {
      const refused = await reveal(replica, tokens['support']!);
      expect([refused.error?.code, refused.reason]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED']);
      expect(refused.error?.details).toMatch(/^reveal quota exceeded \(4 per 3600 s\); retry in \d+ s$/);
      expect(refused.response).toBeUndefined();
    }
    // Another principal has a limit of its own.
    expect((await reveal(1, tokens['support2']!)).response?.fields?.email).toBe('quota.replicas@example.com');
  });

  it("draws a principal's find quota from one limit across both replicas, also under concurrent calls", async () => {
    const find = (replica: number) =>
      call<vaultV1.FindContactsResponse>(
        replica,
        'findContacts',
        { tenantId: T1, by: { $case: 'email', value: 'twice@example.com' } },
        tokens['support2']!,
      );
    const results = await Promise.all(Array.from({ length: FIND_LIMIT + 6 }, (_, i) => find(i % 2)));
    expect(results.filter((r) => r.error === undefined)).toHaveLength(FIND_LIMIT);
    const refused = results.filter((r) => r.error !== undefined);
    expect(refused.map((r) => r.reason)).toEqual(Array(6).fill('QUOTA_EXCEEDED'));
    expect(refused.every((r) => /retry in \d+ s$/.test(r.error!.details))).toBe(true);
  });
});
