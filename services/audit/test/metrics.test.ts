/**
 * The audit writer's metrics, recorded by real work: the appender on the embedded bus and a SQLite log,
 * and a signed tree head written to a file witness. Dashboards and alerts query exactly these series.
 */
import path from 'node:path';
import { EmbeddedBus } from '@sealpost/bus';
import { SqliteLeaseStore, newLeaseHolderId } from '@sealpost/storage';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { FileWitness } from '../src/adapters/witness/file-witness';
import { AUDIT_APPENDER_LEASE, AuditAppender } from '../src/app/append-entries';
import { AuditMetrics } from '../src/app/audit-metrics';
import { signTreeHead } from '../src/app/sign-tree-head';
import { eventually, publishAudit } from './bus-support';

describe('audit metrics', () => {
  let recorded: TestMetrics;
  let dir: TempDir;
  let bus: EmbeddedBus;
  let store: SqliteAuditLogStore;

  beforeEach(() => {
    // Before anything is built: instruments bind to the meter provider current at creation.
    recorded = startTestMetrics();
    dir = tempDir('audit-metrics');
    bus = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    store = SqliteAuditLogStore.open(path.join(dir.path, 'audit.sqlite'));
  });
  afterEach(async () => {
    await bus.close();
    await store.close();
    dir.cleanup();
    await recorded.shutdown();
  });

  it('counts appended and rejected entries by source, the tree size and the writer lease', async () => {
    const audit = bus.forService('audit');
    const vault = bus.forService('contact-vault');
    await audit.ensureStreams();
    const metrics = new AuditMetrics(AUDIT_APPENDER_LEASE);
    const appender = new AuditAppender({
      store,
      leaseStore: new SqliteLeaseStore(store.db),
      holder: newLeaseHolderId('audit'),
      bus: audit,
      consume: { ackWaitMs: 1000, backoffMs: [50], maxDeliver: 3 },
      onError: () => undefined,
      metrics,
    });
    appender.start();
    try {
      for (let i = 0; i < 3; i++) await publishAudit(vault, { tenantId: 't1', resourceIds: [`ct-${i}`] });
      await publishAudit(vault, { tenantId: 't1', resourceIds: ['someone@example.com'] });
      await eventually(async () => (await store.readHead()).size === 3);
      await eventually(
        async () => (await recorded.sum('sealpost_audit_appended_total', { outcome: 'rejected' })) === 1,
      );

      expect(await recorded.sum('sealpost_audit_appended_total', { source: 'vault', outcome: 'ok' })).toBe(3);
      expect(await recorded.sum('sealpost_audit_appended_total', { source: 'vault', outcome: 'rejected' })).toBe(1);
      expect((await recorded.points('sealpost_audit_tree_size')).map((p) => p.value)).toEqual([3]);
      expect(await recorded.points('sealpost_lease_held')).toEqual([
        { attributes: { lease: AUDIT_APPENDER_LEASE }, value: 1 },
      ]);
    } finally {
      await appender.stop();
    }
    // The alert on "no audit writer" reads this gauge: a stopped writer reports 0.
    expect((await recorded.points('sealpost_lease_held')).map((p) => p.value)).toEqual([0]);
  });

  it('counts signed tree heads by witness and outcome', async () => {
    const metrics = new AuditMetrics(AUDIT_APPENDER_LEASE);
    const signer = await LocalEd25519Signer.fromFile(path.join(dir.path, 'sth.jwk'));
    const deps = { store, signer, logId: 'log-1', metrics };
    await signTreeHead({ ...deps, witness: new FileWitness(path.join(dir.path, 'witness.jsonl')) });
    // A witness that cannot be written (a directory where the file should be) fails the head and is counted.
    const broken = new FileWitness(dir.path);
    await expect(signTreeHead({ ...deps, witness: broken })).rejects.toThrow();
    expect(await recorded.sum('sealpost_audit_tree_heads_signed_total', { witness: 'file', outcome: 'ok' })).toBe(1);
    expect(await recorded.sum('sealpost_audit_tree_heads_signed_total', { witness: 'file', outcome: 'failed' })).toBe(
      1,
    );
  });
});
