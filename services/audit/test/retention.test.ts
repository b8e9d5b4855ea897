/**
 * Retention of the log itself: the scheduled prune runs only on the appender's lease holder, removes the bytes of
 * the old prefix, and what remains still verifies (tree nodes and signed heads stay).
 */
import fs from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { openDevTokenIssuer, writeDevTlsFiles } from '@sealpost/access';
import { EmbeddedBus } from '@sealpost/bus';
import { loadConfig } from '@sealpost/config';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { FileWitness, readTreeHeadFile } from '../src/adapters/witness/file-witness';
import { FencedLogWriter } from '../src/app/append-entries';
import { RetentionSchedule } from '../src/app/retention-schedule';
import { signTreeHead } from '../src/app/sign-tree-head';
import { type PruneAuditLogResult, verifyAuditLog } from '../src/app/verify';
import { startAuditService } from '../src/service';
import { eventually, publishAudit } from './bus-support';
import { sampleEntry } from './fixtures';

const DAY = 86_400_000;
const T0 = 1_750_000_000_000;

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

describe('RetentionSchedule', () => {
  let dir: TempDir;
  let store: SqliteAuditLogStore;
  let signer: LocalEd25519Signer;
  const witnessFile = (): string => path.join(dir.path, 'witness.jsonl');

  beforeEach(async () => {
    dir = tempDir('sealpost-audit-retention-');
    store = SqliteAuditLogStore.open(path.join(dir.path, 'audit.sqlite'));
    signer = await LocalEd25519Signer.fromFile(path.join(dir.path, 'key.pem'));
    const witness = new FileWitness(witnessFile());
    const writer = new FencedLogWriter(store, 1);
    await writer.open();
    // 40 entries one second apart from T0, a signed and witnessed head after every 10.
    let clock = T0 + DAY;
    for (let at = 0; at < 40; at += 10) {
      await writer.append(Array.from({ length: 10 }, (_, i) => sampleEntry({ occurredAt: T0 + (at + i) * 1000 })));
      await signTreeHead({ store, signer, witness, logId: 'retention-test', now: () => (clock += 1000) });
    }
    writer.close();
  });

  afterEach(async () => {
    await store.close();
    dir.cleanup();
  });

  const schedule = (
    isLeader: () => boolean,
    extra: { everyMs?: number; onPruned?: (r: PruneAuditLogResult) => void; onError?: (e: unknown) => void } = {},
  ) =>
    new RetentionSchedule({
      store,
      retentionDays: 1,
      // "Now" is one day after entry 25 occurred: entries 0–24 are past the retention period.
      now: () => T0 + 25_000 + DAY,
      isLeader,
      publicKeys: async () => [await signer.publicJwk()],
      trustedSth: async () => readTreeHeadFile(witnessFile()),
      ...extra,
    });

  it('prunes nothing on an instance that does not hold the appender lease', async () => {
    const s = schedule(() => false);
    await expect(s.runNow()).resolves.toBeUndefined();
    await s.stop();
    expect(await store.prunedBefore()).toBe(0);
    expect(await store.getEntries(0, 1)).toHaveLength(1);
  });

  it('on the lease holder, prunes the expired prefix on its timer; the rest still verifies', async () => {
    const results: PruneAuditLogResult[] = [];
    const s = schedule(() => true, { everyMs: 50, onPruned: (r) => results.push(r) });
    s.start();
    await eventually(() => results.length > 0);
    await s.stop();
    expect(results[0]).toMatchObject({ previous: 0, prunedBefore: 25, entriesPruned: 25, stoppedBy: 'time' });
    expect(await store.prunedBefore()).toBe(25);
    expect(await store.getEntries(0, 40)).toHaveLength(15);

    const verdict = await verifyAuditLog({
      store,
      publicKeys: [await signer.publicJwk()],
      trustedSth: readTreeHeadFile(witnessFile()),
    });
    expect(verdict).toMatchObject({ ok: true, treeSize: 40, prunedBefore: 25 });
    // A later run finds nothing more to prune (the next entry is still within the period).
    const again = schedule(() => true);
    await expect(again.runNow()).resolves.toMatchObject({ previous: 25, prunedBefore: 25, entriesPruned: 0 });
    await again.stop();
  });

  it('refuses to prune a log that does not verify, and reports it', async () => {
    store.db.prepare('UPDATE audit_leaves SET canonical = ? WHERE idx = 3').run(Buffer.from('tampered'));
    const errors: unknown[] = [];
    const s = schedule(() => true, { onError: (e) => errors.push(e) });
    await expect(s.runNow()).resolves.toBeUndefined();
    await s.stop();
    expect(errors).toEqual([expect.objectContaining({ code: 'LOG_NOT_VERIFIED' })]);
    expect(await store.prunedBefore()).toBe(0);
  });
});

describe('audit service with SEALPOST_AUDIT_RETENTION_DAYS', () => {
  it('prunes old entries on schedule while appending; verification of the log still passes', async () => {
    const dir = tempDir('sealpost-audit-retention-svc-');
    const dataDir = path.join(dir.path, 'data');
    const pki = path.join(dir.path, 'pki');
    const tls = await writeDevTlsFiles({ dir: pki, mode: 'test', service: 'audit' });
    const issuerDir = path.join(dir.path, 'identity');
    await openDevTokenIssuer({ dir: issuerDir, mode: 'test' });
    const config = loadConfig('audit', {
      SEALPOST_DATA_DIR: dataDir,
      SEALPOST_JWKS_FILE: path.join(issuerDir, 'jwks.json'),
      SEALPOST_TLS_CA_FILE: tls.caFile,
      SEALPOST_TLS_CERT_FILE: tls.certFile,
      SEALPOST_TLS_KEY_FILE: tls.keyFile,
      SEALPOST_AUDIT_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_AUDIT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
      SEALPOST_AUDIT_RETENTION_DAYS: '30',
    });
    expect(config.audit.retentionDays).toBe(30);
    const shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'), { pollIntervalMs: 50 });
    const auditBus = shared.forService('audit');
    const vaultBus = shared.forService('contact-vault');
    const pruned: PruneAuditLogResult[] = [];
    const service = await startAuditService({
      config,
      bus: auditBus,
      treeHeads: { everyEntries: 1 },
      retention: { everyMs: 100, onPruned: (r) => pruned.push(r) },
    });
    const store = config.store.kind === 'sqlite' ? SqliteAuditLogStore.open(config.store.file) : undefined;
    try {
      if (!store) throw new Error('the embedded configuration should use SQLite');
      // Three events from long ago, then two recent ones, each appended and signed before the next.
      const days = [400, 200, 40, 2, 0];
      for (const [k, age] of days.entries()) {
        await publishAudit(vaultBus, { tenantId: 't-retain', occurredAt: new Date(Date.now() - age * DAY) });
        await eventually(async () => ((await store.latestTreeHead())?.treeSize ?? 0) > k);
      }
      await eventually(() => pruned.some((r) => r.prunedBefore === 3));
      expect(await store.prunedBefore()).toBe(3);
      expect((await store.getEntries(0, 10)).map((e) => e.index)).toEqual([3, 4]);

      const signer = await LocalEd25519Signer.fromFile(path.join(dataDir, 'audit', 'sth-signing.jwk.json'));
      expect(fs.existsSync(config.audit.witnessFile)).toBe(true);
      const verdict = await verifyAuditLog({
        store,
        publicKeys: [await signer.publicJwk()],
        trustedSth: readTreeHeadFile(config.audit.witnessFile),
      });
      expect(verdict).toMatchObject({ ok: true, treeSize: 5, prunedBefore: 3 });
    } finally {
      await store?.close();
      await service.stop(1000);
      await auditBus.close();
      await vaultBus.close();
      await shared.close();
      dir.cleanup();
    }
  }, 60_000);
});
