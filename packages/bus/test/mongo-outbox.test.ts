/**
 * The MongoDB halves of the outbox and apply-once, against the MongoDB-wire test server (FerretDB): one
 * update carries state + event, the relay removes by id without touching sibling events, and a stale
 * event's conditional write changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SqliteLeaseStore } from '@sealpost/storage';
import { describeWithMongoPeer } from '@sealpost/storage/testing';
import { tempDir, waitFor } from '@sealpost/testkit';
import Database from 'better-sqlite3';
import {
  EmbeddedBus,
  MongoOutboxSource,
  OutboxRelay,
  createEnvelope,
  eventSubject,
  mongoApplyOnce,
  withPendingEvent,
  type EventEnvelope,
  type OutboxDocument,
  type ReceivedEvent,
} from '../src/index';

interface Consent extends OutboxDocument {
  _id: string;
  state: string;
  version: number;
  appliedVersion?: number;
}

const tenant = `t-${randomBytes(5).toString('hex')}`;
const event = (aggregateId: string, version: number, state: string) =>
  createEnvelope({
    type: 'consent.changed',
    subject: eventSubject('consent', tenant, 'changed'),
    tenant,
    aggregateId,
    aggregateVersion: version,
    payload: new TextEncoder().encode(state),
  });

describeWithMongoPeer('outbox and apply-once on MongoDB', (env) => {
  it('relays events written with the state change and removes each by id only', async () => {
    const consents = env().db.collection<Consent>('consents');
    const source = new MongoOutboxSource(consents);
    await source.ensureIndexes();
    const e1 = event('c1', 1, 'pending');
    await consents.updateOne({ _id: 'c1' }, withPendingEvent<Consent>({ $set: { state: 'pending', version: 1 } }, e1), {
      upsert: true,
    });
    // The relay removes e1 while a later write has already pushed e2: e2 must survive.
    const e2 = event('c1', 2, 'confirmed');
    await consents.updateOne(
      { _id: 'c1' },
      withPendingEvent<Consent>({ $set: { state: 'confirmed', version: 2 } }, e2),
    );
    const listed = await source.listPending(10);
    expect(listed.map((d) => [d.key, d.events.map((e) => e.id)])).toEqual([['c1', [e1.id, e2.id]]]);
    await source.removeEvent('c1', listed[0]!.events[0]!);
    expect((await consents.findOne({ _id: 'c1' }))?.outbox?.map((e) => e.id)).toEqual([e2.id]);

    const dir = tempDir('sealpost-bus-mongo-');
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { pollIntervalMs: 50 });
    const leaseDb = new Database(join(dir.path, 'lease.sqlite'));
    try {
      const consent = bus.forService('consent');
      await consent.ensureStreams();
      const relay = new OutboxRelay({
        source,
        publisher: consent,
        leases: new SqliteLeaseStore(leaseDb),
        leaseName: 'outbox-consents',
        holder: 'relay-1',
        pollIntervalMs: 50,
      });
      relay.start();
      await waitFor('outbox drained', async () => (await source.listPending(10)).length === 0);
      await relay.stop();
      const got: ReceivedEvent[] = [];
      const sub = await bus
        .forService('dispatch')
        .consume(
          { durable: 'mongo-outbox', domain: 'consent', filterSubjects: [`sealpost.consent.${tenant}.>`] },
          (e) => {
            got.push(e);
          },
        );
      await waitFor('event delivered', () => got.length === 1);
      await sub.stop();
      expect(got.map((e) => [e.id, Buffer.from(e.payload).toString()])).toEqual([[e2.id, 'confirmed']]);
      expect(await consents.findOne({ _id: 'c1' })).toEqual({ _id: 'c1', state: 'confirmed', version: 2, outbox: [] });
    } finally {
      await bus.close();
      leaseDb.close();
      dir.cleanup();
    }
  });

  it('relays in batches no larger than the removal limit, removing every event by id and keeping order', async () => {
    const consents = env().db.collection<Consent>('consents_batched');
    const source = new MongoOutboxSource(consents);
    await source.ensureIndexes();
    // 30 documents with one event, 5 of them with a second: 35 events, so batches of 20 + 10, then 5.
    const written: ReturnType<typeof event>[] = [];
    for (let i = 0; i < 30; i++) {
      const e = event(`b${i}`, 1, 'pending');
      written.push(e);
      await consents.updateOne(
        { _id: `b${i}` },
        withPendingEvent<Consent>({ $set: { state: 'pending', version: 1 } }, e),
        {
          upsert: true,
        },
      );
    }
    for (let i = 0; i < 5; i++) {
      const e = event(`b${i}`, 2, 'confirmed');
      written.push(e);
      await consents.updateOne(
        { _id: `b${i}` },
        withPendingEvent<Consent>({ $set: { state: 'confirmed', version: 2 } }, e),
      );
    }
    const dir = tempDir('sealpost-bus-mongo-');
    const bus = EmbeddedBus.open(join(dir.path, 'bus.sqlite'), { pollIntervalMs: 50 });
    const leaseDb = new Database(join(dir.path, 'lease.sqlite'));
    try {
      const consent = bus.forService('consent');
      await consent.ensureStreams();
      const sizes: number[] = [];
      const relay = new OutboxRelay({
        source,
        publisher: {
          publish: () => Promise.reject(new Error('the relay batches with this source')),
          publishMany: async (envelopes: readonly EventEnvelope[]) => {
            sizes.push(envelopes.length);
            return consent.publishMany(envelopes);
          },
        },
        leases: new SqliteLeaseStore(leaseDb),
        leaseName: 'outbox-consents-batched',
        holder: 'relay-1',
      });
      let relayed = 0;
      for (let pass = 0; pass < 5 && relayed < written.length; pass++) relayed += (await relay.runOnce()).published;
      await relay.stop();
      expect(relayed).toBe(35);
      expect(sizes).toEqual([20, 10, 5]);
      expect(await source.listPending(100)).toEqual([]);
      expect(await consents.countDocuments({ 'outbox.0': { $exists: true } })).toBe(0);
      expect(await consents.findOne({ _id: 'b0' })).toEqual({ _id: 'b0', state: 'confirmed', version: 2, outbox: [] });
      const got: ReceivedEvent[] = [];
      const sub = await bus
        .forService('dispatch')
        .consume(
          { durable: 'mongo-outbox-batched', domain: 'consent', filterSubjects: [`sealpost.consent.${tenant}.>`] },
          (e) => {
            got.push(e);
          },
        );
      await waitFor('all delivered', () => got.length >= 35);
      await sub.stop();
      expect(got.map((e) => e.id).sort()).toEqual(written.map((e) => e.id).sort());
      for (let i = 0; i < 5; i++) {
        expect(got.filter((e) => e.aggregateId === `b${i}`).map((e) => e.aggregateVersion)).toEqual([1, 2]);
      }
    } finally {
      await bus.close();
      leaseDb.close();
      dir.cleanup();
    }
  });

  it('applies an event once and never lets an older version undo a newer one', async () => {
    const view = env().db.collection<Consent>('consent_view');
    const apply = (version: number, state: string) =>
      mongoApplyOnce(view, 'c9', version, { $set: { state } }, { upsert: true });
    expect(await apply(2, 'revoked')).toBe(true);
    expect(await apply(1, 'confirmed')).toBe(false);
    expect(await apply(2, 'revoked')).toBe(false);
    expect(await view.findOne({ _id: 'c9' })).toEqual({ _id: 'c9', state: 'revoked', appliedVersion: 2 });
    expect(await apply(3, 'confirmed')).toBe(true);
    expect(await view.findOne({ _id: 'c9' })).toMatchObject({ state: 'confirmed', appliedVersion: 3 });
  });
});
