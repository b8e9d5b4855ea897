/**
 * Every bus, outbox, gRPC, auth, KMS and key-cache metric a dashboard or alert queries is really recorded by
 * the code path that owns it: real operations (embedded bus, outbox relay, gRPC server with the access
 * interceptor, the configured KMS and a key hierarchy) run against an in-memory meter provider, then each
 * queried metric must have data. Vault and audit metrics are recorded by those services and tested there
 * (services/contact-vault/test/subject-rights.grpc.test.ts, services/audit/test/metrics.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_ACCESS_POLICY, createAccessInterceptor, openDevCa } from '@sealpost/access';
import {
  EmbeddedBus,
  OutboxRelay,
  PoisonMessageError,
  createEnvelope,
  eventSubject,
  toOutboxEntry,
  type OutboxEntry,
} from '@sealpost/bus';
import { InMemoryTenantKeyStore, KeyHierarchy, createKeyManagementService, kmsKeyIdResolver } from '@sealpost/crypto';
import { createGrpcServer } from '@sealpost/server';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { waitFor } from '@sealpost/testkit';
import { parse } from 'yaml';
import { dashboardExprs } from './lib/metric-refs';
import { REPO_ROOT } from './lib/render';

const DEPLOY = join(REPO_ROOT, 'deploy');
// The metrics this suite's code paths own; vault_*, audit_*, dispatch_*, ... are recorded by their services.
const OWNED = /^sealpost_(bus|outbox|grpc_server|auth|kms|key_cache|lease)_/;

function queriedMetrics(): string[] {
  const exprs = [
    ...readdirSync(join(DEPLOY, 'dashboards'))
      .filter((f) => f.endsWith('.json'))
      .flatMap((f) => dashboardExprs(JSON.parse(readFileSync(join(DEPLOY, 'dashboards', f), 'utf8')))),
    ...(
      parse(readFileSync(join(DEPLOY, 'alerts.yaml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] }
    ).groups.flatMap((g) => g.rules.map((r) => r.expr)),
  ];
  const names = new Set<string>();
  for (const expr of exprs)
    for (const m of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\bsealpost_[a-z0-9_]+\b/g))
      names.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  return [...names].sort();
}

const tenant = 't-metrics';
const event = (type: string, id: string) =>
  createEnvelope({
    type,
    subject: eventSubject('consent', tenant, type.split('.')[1]!),
    tenant,
    aggregateId: id,
    aggregateVersion: 1,
    payload: new Uint8Array([1]),
  });

async function busScenario(dir: string): Promise<void> {
  const bus = EmbeddedBus.open(join(dir, 'bus.sqlite'), { pollIntervalMs: 20 });
  try {
    const consent = bus.forService('consent');
    const dispatch = bus.forService('dispatch');
    await consent.ensureStreams();
    await dispatch.ensureStreams();
    await consent.publishMany([event('consent.confirmed', 'a1'), event('consent.poisoned', 'a2')]);
    let handled = 0;
    const sub = await dispatch.consume({ durable: 'metrics-recorded', domain: 'consent' }, (e) => {
      handled++;
      if (e.type === 'consent.poisoned') throw new PoisonMessageError('bad_payload');
    });
    await waitFor('both settled', () => handled === 2);
    await sub.stop();

    // The outbox relay over an in-memory source and lease store (the SQLite/MongoDB ones are tested in bus).
    const pending: OutboxEntry[] = [toOutboxEntry(event('consent.confirmed', 'a3'))];
    let token = 0;
    const relay = new OutboxRelay({
      source: {
        listPending: async () => (pending.length ? [{ key: 'a3', events: [...pending] }] : []),
        removeEvent: async (_key, entry) => void pending.splice(pending.indexOf(entry), 1),
      },
      publisher: consent,
      leases: {
        tryAcquire: async (name, holder, ttlMs) => ({ name, holder, token: ++token, expiresAt: Date.now() + ttlMs }),
        renew: async (grant, ttlMs) => ({ ...grant, expiresAt: Date.now() + ttlMs }),
        release: async () => undefined,
      },
      leaseName: 'outbox:consent:consents',
      holder: 'relay-1',
    });
    await relay.runOnce();
    await relay.stop();
  } finally {
    await bus.close();
  }
}

/** A health check over mTLS (allowed) and one with a bad bearer token (refused by the access interceptor). */
async function grpcScenario(dir: string): Promise<void> {
  const ca = await openDevCa({ dir: join(dir, 'ca'), mode: 'test' });
  const serverCert = await ca.issue({ service: 'contact-vault', usage: 'server' });
  const clientCert = await ca.issue({ service: 'dispatch', usage: 'client' });
  const server = await createGrpcServer({
    service: 'contact-vault',
    mode: 'test',
    address: '127.0.0.1:0',
    tls: { ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem },
    interceptors: [createAccessInterceptor({ policy: DEFAULT_ACCESS_POLICY, trustDomain: 'sealpost.dev' })],
  });
  const { port } = await server.start();
  const client = new grpc.Client(
    `localhost:${port}`,
    grpc.credentials.createSsl(
      Buffer.from(ca.certPem),
      Buffer.from(clientCert.keyPem),
      Buffer.from(clientCert.certPem),
    ),
  );
  const check = (metadata: grpc.Metadata) =>
    new Promise<number>((resolve) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        metadata,
        (error) => resolve(error?.code ?? grpc.status.OK),
      );
    });
  try {
    expect(await check(new grpc.Metadata())).toBe(grpc.status.OK);
    const bad = new grpc.Metadata();
    bad.set('authorization', 'Bearer not-a-token');
    expect(await check(bad)).toBe(grpc.status.UNAUTHENTICATED);
  } finally {
    client.close();
    server.forceShutdown();
  }
}

/** KEK creation and a cold replica's unwrap through the configured (local) KMS, then a cache hit. */
async function kmsScenario(dir: string): Promise<void> {
  const kms = await createKeyManagementService({
    mode: 'development',
    kms: { kind: 'local', keyringPath: join(dir, 'keyring.json') },
  });
  const tenantKeys = new InMemoryTenantKeyStore();
  const kmsKeyIdFor = kmsKeyIdResolver({ template: 'tenant-{tenant}' });
  await new KeyHierarchy({ kms, tenantKeys, kmsKeyIdFor }).currentKek(tenant);
  const replica = new KeyHierarchy({ kms, tenantKeys, kmsKeyIdFor });
  await replica.currentKek(tenant);
  await replica.currentKek(tenant);
}

describe('the metrics dashboards and alerts query are recorded by the code', () => {
  let recorded: TestMetrics;
  let dir: string;
  beforeAll(async () => {
    recorded = startTestMetrics();
    dir = await mkdtemp(join(tmpdir(), 'sealpost-metrics-recorded-'));
  });
  afterAll(async () => {
    await recorded.shutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it('queries only metrics of services that exist: platform ones here, vault and audit ones tested by them', () => {
    // A dashboard panel for a service that is not built yet would stay empty: it joins with the service.
    const elsewhere = /^sealpost_(vault|audit)_/;
    expect(queriedMetrics().filter((n) => !OWNED.test(n) && !elsewhere.test(n))).toEqual([]);
  });

  it('finds the owned metrics in the dashboards and alerts', () => {
    expect(queriedMetrics().filter((n) => OWNED.test(n))).toEqual(
      expect.arrayContaining([
        'sealpost_bus_published_total',
        'sealpost_bus_consumed_total',
        'sealpost_bus_consumer_lag',
        'sealpost_bus_dead_lettered_total',
        'sealpost_outbox_pending',
        'sealpost_outbox_relayed_total',
        'sealpost_grpc_server_requests_total',
        'sealpost_grpc_server_duration_seconds',
        'sealpost_auth_denied_total',
        'sealpost_kms_calls_total',
        'sealpost_key_cache_total',
      ]),
    );
  });

  it('records every one of them, with the label values the queries select', async () => {
    await busScenario(dir);
    await grpcScenario(dir);
    await kmsScenario(dir);
    const data = await recorded.collect();
    const missing = queriedMetrics().filter((n) => OWNED.test(n) && !data.has(n));
    expect(missing).toEqual([]);
    // Label values the dashboards and alerts select on.
    expect(await recorded.sum('sealpost_grpc_server_requests_total', { code: 'OK' })).toBeGreaterThan(0);
    expect(await recorded.sum('sealpost_grpc_server_requests_total', { code: 'UNAUTHENTICATED' })).toBe(1);
    expect(await recorded.sum('sealpost_auth_denied_total', { reason: 'TOKEN_INVALID' })).toBe(1);
    expect(await recorded.sum('sealpost_kms_calls_total', { operation: 'decrypt', outcome: 'ok' })).toBe(1);
    expect(await recorded.sum('sealpost_key_cache_total', { outcome: 'hit' })).toBeGreaterThan(0);
    expect(await recorded.sum('sealpost_outbox_relayed_total', { outcome: 'ok' })).toBe(1);
    expect(await recorded.sum('sealpost_bus_consumed_total', { outcome: 'ack' })).toBe(1);
    expect(await recorded.sum('sealpost_bus_consumed_total', { outcome: 'dead_letter' })).toBe(1);
    expect(await recorded.sum('sealpost_lease_held', { lease: 'outbox:consent:consents' })).toBe(0);
  });
});
