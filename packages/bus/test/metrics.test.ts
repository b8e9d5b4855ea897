/**
 * The bus records its metrics on real operations: publish, consume (ack, retry, dead-letter), consumer lag
 * and the outbox relay, on the embedded bus and on JetStream. Labels carry codes and names, never tenants.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SqliteLeaseStore } from '@sealpost/storage';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { describeWithPeer, loadPeers, tempDir, waitFor } from '@sealpost/testkit';
import Database from 'better-sqlite3';
import {
  EmbeddedBus,
  NatsServiceBus,
  OutboxRelay,
  PoisonMessageError,
  SqliteOutboxSource,
  appendPendingEvent,
  createEnvelope,
  ensureSqliteOutbox,
  eventSubject,
  type ReceivedEvent,
} from '../src/index';
import { TEST_STREAMS } from './support/harness';

const tenant = `t-${randomBytes(5).toString('hex')}`;
const event = (type: string, aggregateId: string) =>
  createEnvelope({
    type,
    subject: eventSubject('consent', tenant, type.split('.')[1]!),
    tenant,
    aggregateId,
    aggregateVersion: 1,
    payload: new TextEncoder().encode('x'),
  });

let recorded: TestMetrics;
beforeEach(() => {
  recorded = startTestMetrics();
});
afterEach(() => recorded.shutdown());

describe('bus metrics on the embedded bus', () => {
  it('counts publishes, settlements by outcome, dead-letters and the consumer lag', async () => {
    const dir = tempDir('sealpost-bus-metrics-');
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    try {
      const consent = bus.forService('consent');
      const vault = bus.forService('dispatch');
      await consent.ensureStreams();
      await vault.ensureStreams();
      await consent.publishMany([event('consent.confirmed', 'a1'), event('consent.poisoned', 'a2')]);
      await consent.publish(event('consent.retried', 'a3'));
      await expect(vault.publish(event('consent.confirmed', 'a4'))).rejects.toThrow();

      // Three events wait for a consumer that has not fetched yet: its lag is 3 after its first fetch at most.
      const seen: ReceivedEvent[] = [];
      const sub = await vault.consume(
        { durable: 'metrics-dispatch', domain: 'consent', backoffMs: [1], maxDeliver: 5 },
        (e) => {
          seen.push(e);
          if (e.type === 'consent.poisoned') throw new PoisonMessageError('bad_payload');
          if (e.type === 'consent.retried' && e.deliveries === 1) throw new Error('transient');
        },
      );
      await waitFor('all settled', () => seen.length === 4);
      await waitFor('dead-letter counted', async () => (await recorded.sum('sealpost_bus_dead_lettered_total')) === 1);
      await sub.stop();

      const published = await recorded.points('sealpost_bus_published_total');
      expect(published).toEqual(
        expect.arrayContaining([
          { attributes: { domain: 'consent', event_type: 'consent.confirmed', outcome: 'ok' }, value: 1 },
          { attributes: { domain: 'consent', event_type: 'consent.poisoned', outcome: 'ok' }, value: 1 },
          { attributes: { domain: 'consent', event_type: 'consent.retried', outcome: 'ok' }, value: 1 },
          // dispatch may not publish to the consent domain: refused, nothing sent.
          { attributes: { domain: 'consent', event_type: 'consent.confirmed', outcome: 'refused' }, value: 1 },
        ]),
      );
      const consumed = (labels: Record<string, string>) => recorded.sum('sealpost_bus_consumed_total', labels);
      expect(await consumed({ consumer: 'metrics-dispatch', event_type: 'consent.confirmed', outcome: 'ack' })).toBe(1);
      expect(await consumed({ event_type: 'consent.retried', outcome: 'retry' })).toBe(1);
      expect(await consumed({ event_type: 'consent.retried', outcome: 'ack' })).toBe(1);
      expect(await consumed({ event_type: 'consent.poisoned', outcome: 'dead_letter' })).toBe(1);
      expect(await recorded.points('sealpost_bus_dead_lettered_total')).toEqual([
        {
          attributes: { consumer: 'metrics-dispatch', event_type: 'consent.poisoned', reason: 'poison:bad_payload' },
          value: 1,
        },
      ]);
      const lag = await recorded.points('sealpost_bus_consumer_lag');
      expect(lag).toEqual([{ attributes: { consumer: 'metrics-dispatch', stream: 'SEALPOST_CONSENT' }, value: 0 }]);
      expect(JSON.stringify([...(await recorded.collect())])).not.toContain(tenant);
    } finally {
      await bus.close();
      dir.cleanup();
    }
  });

  it('reports the lag of a consumer that is behind', async () => {
    const dir = tempDir('sealpost-bus-metrics-');
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    try {
      const consent = bus.forService('consent');
      await consent.ensureStreams();
      await consent.publishMany(Array.from({ length: 10 }, (_, i) => event('consent.confirmed', `a${i}`)));
      let release!: () => void;
      const blocked = new Promise<void>((resolve) => (release = resolve));
      const sub = await bus
        .forService('dispatch')
        .consume({ durable: 'metrics-slow', domain: 'consent', batch: 2 }, () => blocked);
      await waitFor('lag recorded', async () => (await recorded.points('sealpost_bus_consumer_lag')).length === 1);
      expect(await recorded.sum('sealpost_bus_consumer_lag', { consumer: 'metrics-slow' })).toBe(8);
      release();
      await waitFor('caught up', async () => (await recorded.sum('sealpost_bus_consumer_lag')) === 0);
      await sub.stop();
    } finally {
      await bus.close();
      dir.cleanup();
    }
  });

  it('the outbox relay reports relayed events, what is still pending and the lease it holds', async () => {
    const dir = tempDir('sealpost-bus-metrics-');
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { pollIntervalMs: 20 });
    const db = new Database(join(dir.path, 'consent.sqlite'));
    const leaseDb = new Database(join(dir.path, 'lease.sqlite'));
    try {
      const consent = bus.forService('consent');
      await consent.ensureStreams();
      ensureSqliteOutbox(db);
      db.transaction(() => {
        appendPendingEvent(db, 'a1', event('consent.confirmed', 'a1'));
        appendPendingEvent(db, 'a2', event('consent.confirmed', 'a2'));
      })();
      const relay = new OutboxRelay({
        source: new SqliteOutboxSource(db),
        publisher: consent,
        leases: new SqliteLeaseStore(leaseDb),
        leaseName: 'outbox:consent:consents',
        holder: 'relay-1',
      });
      expect(await relay.runOnce()).toEqual({ published: 2, duplicates: 0 });
      expect(await recorded.points('sealpost_outbox_relayed_total')).toEqual([
        { attributes: { collection: 'consents', outcome: 'ok' }, value: 2 },
      ]);
      expect(await recorded.points('sealpost_outbox_pending')).toEqual([
        { attributes: { collection: 'consents' }, value: 0 },
      ]);
      expect(await recorded.points('sealpost_lease_held')).toEqual([
        { attributes: { lease: 'outbox:consent:consents' }, value: 1 },
      ]);

      // A bus that stores nothing: the event stays pending and the failure is counted.
      db.transaction(() => appendPendingEvent(db, 'a3', event('consent.confirmed', 'a3')))();
      const failing = new OutboxRelay({
        source: new SqliteOutboxSource(db),
        publisher: { publish: () => Promise.reject(new Error('bus down')) },
        leases: new SqliteLeaseStore(leaseDb),
        leaseName: 'outbox:consent:consents',
        holder: 'relay-1',
      });
      await expect(failing.runOnce()).rejects.toThrow('bus down');
      expect(await recorded.sum('sealpost_outbox_relayed_total', { outcome: 'failed' })).toBe(1);
      expect(await recorded.sum('sealpost_outbox_pending')).toBe(1);
      await relay.stop();
    } finally {
      db.close();
      leaseDb.close();
      await bus.close();
      dir.cleanup();
    }
  });
});

describeWithPeer('nats', 'bus metrics on JetStream', () => {
  const url = loadPeers().nats?.url ?? 'nats://127.0.0.1:4222';

  it('counts publishes and acks, and reports num_pending as the consumer lag', async () => {
    const bus = await NatsServiceBus.connect({ servers: url }, { service: 'consent', streams: TEST_STREAMS });
    const vault = await NatsServiceBus.connect({ servers: url }, { service: 'dispatch', streams: TEST_STREAMS });
    const durable = `metrics-${randomBytes(4).toString('hex')}`;
    const type = `consent.m${randomBytes(3).toString('hex')}`;
    try {
      await bus.ensureStreams();
      const events = [event(type, 'a1'), event(type, 'a2')];
      await bus.publishMany(events);
      const seen: string[] = [];
      const sub = await vault.consume(
        { durable, domain: 'consent', filterSubjects: [events[0]!.subject] },
        (e) => void seen.push(e.id),
      );
      await waitFor('consumed', () => seen.length === 2);
      await waitFor('acks counted', async () => (await recorded.sum('sealpost_bus_consumed_total')) === 2);
      await sub.stop();
      expect(await recorded.points('sealpost_bus_published_total')).toEqual([
        { attributes: { domain: 'consent', event_type: type, outcome: 'ok' }, value: 2 },
      ]);
      expect(await recorded.points('sealpost_bus_consumed_total')).toEqual([
        { attributes: { consumer: durable, event_type: type, outcome: 'ack' }, value: 2 },
      ]);
      // The last delivery saw nothing left behind it.
      expect(await recorded.points('sealpost_bus_consumer_lag')).toEqual([
        { attributes: { consumer: durable, stream: 'SEALPOST_CONSENT' }, value: 0 },
      ]);
    } finally {
      const { jetstreamManager } = await import('@nats-io/jetstream');
      await (await jetstreamManager(bus.connection)).consumers.delete('SEALPOST_CONSENT', durable).catch(() => false);
      await bus.close();
      await vault.close();
    }
  });
});
