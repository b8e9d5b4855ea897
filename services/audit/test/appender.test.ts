import path from 'node:path';
import { DEAD_LETTER_STREAM, EmbeddedBus, NatsServiceBus, type ServiceBus } from '@sealpost/bus';
import { type LeaseStore, SqliteLeaseStore, newLeaseHolderId } from '@sealpost/storage';
import { describeWithPeer, loadPeers, tempDir, uniqueName } from '@sealpost/testkit';
import { verifyLog } from '../src/domain';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { AuditAppender } from '../src/app/append-entries';
import type { AuditLogStore } from '../src/ports/audit-log-store';
import { auditPayload, eventually, publishAudit } from './bus-support';

interface BusSetup {
  /** The audit service's handle and a source service's handle. */
  open(): Promise<{ audit: ServiceBus; vault: ServiceBus; deadLetterReasons(): string[] | undefined }>;
}

const STREAMS = { defaults: { maxAgeMs: 10 * 60_000, maxBytes: 256 * 1024 * 1024 } };

function appenderSuite(kind: string, setup: (dir: string) => BusSetup): void {
  let dir: { path: string; cleanup?: () => void };
  let store: SqliteAuditLogStore;
  let leases: SqliteLeaseStore;
  let buses: { audit: ServiceBus; vault: ServiceBus; deadLetterReasons(): string[] | undefined };
  let tenant: string;
  let durable: string;
  const running: AuditAppender[] = [];

  beforeEach(async () => {
    dir = tempDir('audit-appender') as typeof dir;
    store = SqliteAuditLogStore.open(path.join(dir.path, 'audit.sqlite'));
    leases = new SqliteLeaseStore(store.db);
    buses = await setup(dir.path).open();
    await buses.audit.ensureStreams();
    tenant = uniqueName('t')
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 60);
    durable = uniqueName('audit-appender')
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 60);
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop();
    await buses.audit.close();
    await buses.vault.close();
    await store.close();
  });

  const startAppender = (
    over: Partial<{ store: AuditLogStore; leaseStore: LeaseStore; ttl: number }> = {},
  ): AuditAppender => {
    const a = new AuditAppender({
      store: over.store ?? store,
      leaseStore: over.leaseStore ?? leases,
      holder: newLeaseHolderId('audit'),
      bus: buses.audit,
      leaseTtlMs: over.ttl ?? 600,
      durable,
      filterSubject: `sealpost.audit.vault.${tenant}.>`,
      consume: { ackWaitMs: 1000, backoffMs: [50], maxDeliver: 20 },
      onError: () => undefined,
    });
    running.push(a);
    a.start();
    return a;
  };

  const publishMany = async (n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++)
      ids.push(await publishAudit(buses.vault, { tenantId: tenant, resourceIds: [`ct-${i}`] }));
    return ids;
  };

  const logIds = async (): Promise<string[]> => (await store.getEntries(0, 1e9)).map((l) => l.entryId);

  const expectVerifiedLog = async (): Promise<void> => {
    const leaves = await store.getEntries(0, 1e9);
    expect(leaves.map((l) => l.index)).toEqual(leaves.map((_, i) => i));
    const head = await store.readHead();
    const result = await verifyLog({
      entries: leaves.map((l) => l.canonical),
      storedLeafHashes: leaves.map((l) => l.leafHash) as never,
    });
    expect(result).toMatchObject({ ok: true, treeSize: head.size, rootHash: head.root.toString('hex') });
  };

  it(`[${kind}] events published while the appender is stopped wait durably and are appended in order, completely`, async () => {
    // Create the durable first (as a deployed appender would have), then stop it. A lease that cannot expire
    // during the test: a takeover mid-run (tested below) would redeliver behind later events.
    const first = startAppender({ ttl: 10_000 });
    await eventually(async () => first.activeWriter !== undefined);
    await first.stop();
    running.splice(running.indexOf(first), 1);
    // The service is down as in a restart: its process, and with it its bus connection, is gone.
    await buses.audit.close();
    await buses.vault.close();
    buses = await setup(dir.path).open();
    const ids = await publishMany(25);
    expect((await store.readHead()).size).toBe(0);
    startAppender({ ttl: 10_000 });
    await eventually(async () => (await store.readHead()).size === 25);
    expect(await logIds()).toEqual(ids);
    const e = await store.findByEntryId(ids[3]!);
    expect(e?.index).toBe(3);
    await expectVerifiedLog();
  });

  it(`[${kind}] a redelivered event (crash between head CAS and ack) is appended once`, async () => {
    let failOnce = true;
    const flaky: AuditLogStore = Object.create(store) as AuditLogStore;
    flaky.append = async (batch) => {
      const head = await store.append(batch);
      if (failOnce) {
        failOnce = false;
        throw new Error('simulated crash after commit, before ack');
      }
      return head;
    };
    startAppender({ store: flaky });
    const [id] = await publishMany(1);
    await eventually(async () => !failOnce && (await store.readHead()).size === 1);
    const [id2] = await publishMany(1);
    await eventually(async () => (await store.readHead()).size === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(await logIds()).toEqual([id, id2]);
    await expectVerifiedLog();
  });

  it(`[${kind}] malformed events are dead-lettered with a reason and never appended`, async () => {
    startAppender();
    await publishAudit(buses.vault, { tenantId: tenant }, Buffer.from([0xff, 0xff, 0xff]));
    await publishAudit(buses.vault, { tenantId: tenant, resourceIds: ['someone@example.com'] });
    const wrongTenant = auditPayload({ tenantId: 'other', eventId: '' });
    await publishAudit(buses.vault, { tenantId: tenant }, wrongTenant);
    const [good] = await publishMany(1);
    await eventually(async () => (await store.readHead()).size === 1);
    expect(await logIds()).toEqual([good]);
    const reasons = buses.deadLetterReasons();
    if (reasons) {
      await eventually(() => (buses.deadLetterReasons() ?? []).length >= 3);
      expect(buses.deadLetterReasons()).toEqual(
        expect.arrayContaining([
          'poison:audit-bad-protobuf',
          'poison:audit-invalid-entry',
          'poison:audit-subject-mismatch',
        ]),
      );
    }
  });

  it(`[${kind}] two instances: the holder freezes mid-batch and loses its lease; no gap, no duplicate, no fork`, async () => {
    let frozen = false;
    let release: () => void = () => undefined;
    const thaw = new Promise<void>((r) => (release = r));
    let blockedAppends = 0;
    const frozenStore: AuditLogStore = Object.create(store) as AuditLogStore;
    frozenStore.append = async (batch) => {
      if (frozen) {
        blockedAppends += 1;
        await thaw;
      }
      return store.append(batch);
    };
    let cut = false;
    const cutLeases: LeaseStore = {
      tryAcquire: (n, h, t) => (cut ? Promise.resolve(null) : leases.tryAcquire(n, h, t)),
      renew: (g, t) => (cut ? Promise.reject(new Error('network partition')) : leases.renew(g, t)),
      release: (g) => (cut ? Promise.resolve() : leases.release(g)),
    };
    const a = startAppender({ store: frozenStore, leaseStore: cutLeases });
    await eventually(() => a.activeWriter !== undefined);
    const before = await publishMany(5);
    await eventually(async () => (await store.readHead()).size === 5);

    frozen = true;
    const during = await publishMany(5);
    await eventually(() => blockedAppends > 0);
    cut = true; // A can no longer renew: it loses the lease ('unreachable') and B takes over after the ttl
    const b = startAppender();
    await eventually(() => b.activeWriter !== undefined, 10_000);
    await eventually(async () => (await store.readHead()).size === 10, 20_000);
    release(); // A wakes up and tries to commit with its old token: refused
    await new Promise((r) => setTimeout(r, 500));
    const after = await publishMany(3);
    await eventually(async () => (await store.readHead()).size === 13, 20_000);

    const ids = await logIds();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(0, 5)).toEqual(before);
    expect([...ids.slice(5, 10)].sort()).toEqual([...during].sort());
    expect(ids.slice(10)).toEqual(after);
    expect((await store.readHead()).token).toBeGreaterThan(1);
    await expectVerifiedLog();
  }, 60_000);
}

describe('audit appender on the embedded bus', () => {
  appenderSuite('embedded', (dir) => ({
    async open() {
      const bus = EmbeddedBus.open(path.join(dir, 'bus.sqlite'), { streams: STREAMS, pollIntervalMs: 50 });
      const audit = bus.forService('audit');
      const vault = bus.forService('contact-vault');
      return {
        audit,
        vault,
        deadLetterReasons: () =>
          bus
            .read(DEAD_LETTER_STREAM)
            .map((m) => (m as { headers: Record<string, string> }).headers['Sealpost-DL-Reason'] ?? ''),
      };
    },
  }));
});

describeWithPeer('nats', 'audit appender on JetStream', () => {
  const url = loadPeers().nats?.url ?? 'nats://127.0.0.1:4222';
  appenderSuite('jetstream', () => ({
    async open() {
      const audit = await NatsServiceBus.connect({ servers: url }, { service: 'audit', streams: STREAMS });
      const vault = await NatsServiceBus.connect({ servers: url }, { service: 'contact-vault', streams: STREAMS });
      return { audit, vault, deadLetterReasons: () => undefined };
    },
  }));
});
