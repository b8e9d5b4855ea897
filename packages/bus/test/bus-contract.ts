/**
 * The ONE behaviour contract of the bus port, run against every adapter (JetStream, embedded). Tests isolate
 * by unique tenant ids and durable names, since streams have fixed names.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SpanKind, trace } from '@opentelemetry/api';
import Database from 'better-sqlite3';
import { SqliteLeaseStore } from '@sealpost/storage';
import { REPO_ROOT, tempDir, waitFor, type TempDir } from '@sealpost/testkit';
import {
  HEADERS,
  OutboxRelay,
  PoisonMessageError,
  PublishNotAllowedError,
  ConsumeNotAllowedError,
  SqliteOutboxSource,
  appendPendingEvent,
  createEnvelope,
  deadLetterSubject,
  ensureSqliteOutbox,
  eventSubject,
  type ConsumeOptions,
  type EventEnvelope,
  type BatchFailure,
  type BatchHandler,
  type EventHandler,
  type EventPublisher,
  type OutboxEntry,
  type PublishAck,
  type ReceivedEvent,
  type ServiceBus,
} from '../src/index';
import { applyEffect, effectRows, ensureEffects } from './support/effects';
import type { BusHarness } from './support/harness';
import { installTestTracing } from './support/tracing';

export function runBusContract(makeHarness: (dir: TempDir, durablePrefix: string) => Promise<BusHarness>): void {
  const durablePrefix = `c${randomBytes(4).toString('hex')}`;
  let dir: TempDir;
  let harness: BusHarness;
  let vault: ServiceBus; // publisher: owns the vault domain
  let dispatch: ServiceBus; // consumer: its grant includes vault
  const subscriptions: { stop(): Promise<void> }[] = [];
  const tracing = installTestTracing();
  let n = 0;

  const tenantId = () => `t-${randomBytes(5).toString('hex')}`;
  const durableName = () => `${durablePrefix}-${++n}`;

  function vaultEvent(
    tenant: string,
    aggregateId: string,
    version: number,
    text = `v${version}`,
    name = 'contact-upserted',
  ) {
    return createEnvelope({
      type: 'vault.contact.upserted',
      subject: eventSubject('vault', tenant, name),
      tenant,
      aggregateId,
      aggregateVersion: version,
      payload: new TextEncoder().encode(text),
    });
  }

  async function consume(
    tenant: string,
    handler: EventHandler,
    options: Partial<ConsumeOptions> = {},
  ): Promise<{ durable: string }> {
    const durable = options.durable ?? durableName();
    const sub = await dispatch.consume(
      { durable, domain: 'vault', filterSubjects: [`sealpost.vault.${tenant}.>`], ackWaitMs: 2000, ...options },
      handler,
    );
    subscriptions.push(sub);
    return { durable };
  }

  async function consumeBatches(
    tenant: string,
    handler: BatchHandler,
    options: Partial<ConsumeOptions> = {},
  ): Promise<{ durable: string }> {
    const durable = options.durable ?? durableName();
    const sub = await dispatch.consumeBatches(
      { durable, domain: 'vault', filterSubjects: [`sealpost.vault.${tenant}.>`], ackWaitMs: 2000, ...options },
      handler,
    );
    subscriptions.push(sub);
    return { durable };
  }

  /** waitFor that returns the defined value. */
  async function until<T>(
    what: string,
    check: () => Promise<T | undefined> | T | undefined,
    timeoutMs = 10_000,
  ): Promise<T> {
    const value = await waitFor(what, check, { timeoutMs });
    if (value === undefined) throw new Error(`${what}: no value`);
    return value;
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    dir = tempDir('sealpost-bus-');
    harness = await makeHarness(dir, durablePrefix);
    vault = await harness.open('contact-vault');
    dispatch = await harness.open('dispatch');
    await vault.ensureStreams();
    // Idempotent: a second run at start-up changes nothing and does not fail.
    await vault.ensureStreams();
  });

  afterEach(async () => {
    await Promise.all(subscriptions.splice(0).map((sub) => sub.stop()));
  });

  afterAll(async () => {
    await harness?.close();
    dir?.cleanup();
    tracing.uninstall();
  });

  it('stores durably and delivers every envelope field to a durable consumer', async () => {
    const tenant = tenantId();
    const events = [1, 2, 3].map((v) =>
      createEnvelope({
        type: 'vault.contact.upserted',
        subject: eventSubject('vault', tenant, 'contact-upserted'),
        tenant,
        aggregateId: `c-${v}`,
        aggregateVersion: v,
        payload: new Uint8Array([0, 255, v]),
        headers: { 'x-origin': 'import' },
      }),
    );
    const acks: PublishAck[] = [];
    for (const e of events) acks.push(await vault.publish(e));
    expect(acks.map((a) => [a.stream, a.duplicate])).toEqual(events.map(() => ['SEALPOST_VAULT', false]));
    expect(acks[1]!.seq).toBeGreaterThan(acks[0]!.seq);

    const got: ReceivedEvent[] = [];
    await consume(tenant, (e) => void got.push(e));
    await waitFor('three events', () => got.length >= 3);
    expect(got.map((e) => e.streamSeq)).toEqual(acks.map((a) => a.seq));
    got.forEach((e, i) => {
      const sent = events[i]!;
      expect({ ...e, payload: [...e.payload], headers: { 'x-origin': e.headers['x-origin'] } }).toEqual({
        ...sent,
        payload: [...sent.payload],
        headers: { 'x-origin': 'import' },
        stream: 'SEALPOST_VAULT',
        streamSeq: acks[i]!.seq,
        deliveries: 1,
      });
    });
  });

  it('refuses a subject outside the service grant before sending, and consumers outside it', async () => {
    const tenant = tenantId();
    const foreign = createEnvelope({
      type: 'consent.confirmed',
      subject: eventSubject('consent', tenant, 'confirmed'),
      tenant,
      aggregateId: 'c-1',
      aggregateVersion: 1,
      payload: new Uint8Array([1]),
    });
    const attempt = vault.publish(foreign);
    await expect(attempt).rejects.toThrow(PublishNotAllowedError);
    await expect(vault.publish(foreign)).rejects.toMatchObject({
      code: 'BUS_PUBLISH_NOT_ALLOWED',
      message: `service contact-vault may not publish on subject ${foreign.subject}`,
    });
    // Not even the dead-letter subject of another service.
    const dl = { ...vaultEvent(tenant, 'c-1', 1), subject: deadLetterSubject('dispatch', 'x') };
    await expect(vault.publish(dl)).rejects.toMatchObject({ code: 'BUS_PUBLISH_NOT_ALLOWED' });
    await expect(vault.consume({ durable: durableName(), domain: 'consent' }, () => undefined)).rejects.toThrow(
      ConsumeNotAllowedError,
    );
  });

  it('acknowledges a republished event id as a duplicate and delivers it once', async () => {
    const tenant = tenantId();
    const event = vaultEvent(tenant, 'c-1', 1);
    const first = await vault.publish(event);
    const again = await vault.publish(event);
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ stream: first.stream, seq: first.seq, duplicate: true });
    const marker = await vault.publish(vaultEvent(tenant, 'c-2', 1));
    const got: ReceivedEvent[] = [];
    await consume(tenant, (e) => void got.push(e));
    await waitFor('marker event', () => got.some((e) => e.streamSeq === marker.seq));
    expect(got.map((e) => e.id)).toEqual([event.id, got[1]!.id]);
  });

  it('keeps per-subject order for a single consumer', async () => {
    const tenant = tenantId();
    for (let v = 1; v <= 12; v++) {
      await vault.publish(vaultEvent(tenant, 'a', v, `a${v}`, 'contact-upserted'));
      await vault.publish(vaultEvent(tenant, 'b', v, `b${v}`, 'contact-erased'));
    }
    const got: ReceivedEvent[] = [];
    await consume(tenant, (e) => void got.push(e), { batch: 5 });
    await waitFor('24 events', () => got.length >= 24);
    for (const name of ['contact-upserted', 'contact-erased']) {
      const versions = got.filter((e) => e.subject.endsWith(name)).map((e) => e.aggregateVersion);
      expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
  });

  it.each(['single', 'batch'] as const)(
    'a %s consumer stopped while deliveries are on their way, then restarted on the same connection, gets every event at once and in order',
    async (mode) => {
      const tenant = tenantId();
      // An ack wait far longer than the wait below: a delivery swallowed by the stopped subscription would only
      // come back once it expired, late and after later events on the same subject.
      const options = {
        durable: durableName(),
        domain: 'vault' as const,
        filterSubjects: [`sealpost.vault.${tenant}.>`],
        ackWaitMs: 20_000,
        batch: 4,
      };
      const got: ReceivedEvent[] = [];
      const start = () =>
        mode === 'single'
          ? dispatch.consume(options, (e) => void got.push(e))
          : dispatch.consumeBatches(options, (batch) => void got.push(...batch));
      const events = [1, 2, 3, 4, 5, 6, 7, 8].map((v) => vaultEvent(tenant, 'a', v));

      const first = await start();
      await sleep(300); // its pull request is waiting on the server
      const published = vault.publishMany(events.slice(0, 4));
      // Microtasks only (no I/O turn): the publishes are written out, nothing is read. Then hold the thread, so
      // the server's deliveries to the waiting pull sit unread in the socket when the subscription stops, as
      // when a service stops while the server is sending.
      for (let i = 0; i < 3; i++) await Promise.resolve();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      const stopped = first.stop();
      await published;
      await stopped;
      // Published after the stop, before the restart.
      await vault.publishMany(events.slice(4));
      subscriptions.push(await start());
      await waitFor('all eight, long before the ack wait', () => got.length >= 8, { timeoutMs: 5000 });
      await sleep(200);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
    },
  );

  it('an older version delivered after a newer one has no effect', async () => {
    const tenant = tenantId();
    const store = new Database(join(dir.path, `order-${tenant}.sqlite`));
    ensureEffects(store);
    await vault.publish(vaultEvent(tenant, 'consent-1', 2, 'revoked'));
    await vault.publish(vaultEvent(tenant, 'consent-1', 1, 'confirmed'));
    const outcomes: boolean[] = [];
    await consume(tenant, (e) => void outcomes.push(applyEffect(store, e)));
    await waitFor('both events', () => outcomes.length >= 2);
    expect(outcomes).toEqual([true, false]);
    expect(effectRows(store)).toEqual([{ id: 'consent-1', count: 1, state: 'revoked', applied_version: 2 }]);
    store.close();
  });

  it('retries with backoff, then dead-letters after maxDeliver with origin headers', async () => {
    const tenant = tenantId();
    const event = vaultEvent(tenant, 'c-1', 1);
    const ack = await vault.publish(event);
    const seen: { deliveries: number; at: number }[] = [];
    const { durable } = await consume(
      tenant,
      (e) => {
        seen.push({ deliveries: e.deliveries, at: Date.now() });
        throw new Error('downstream unavailable');
      },
      { maxDeliver: 3, backoffMs: [150, 300] },
    );
    const subject = deadLetterSubject('dispatch', durable);
    const [dl] = await until('dead letter', async () => {
      const list = await harness.deadLetters(subject);
      return list.length > 0 ? list : undefined;
    });
    expect(seen.map((s) => s.deliveries)).toEqual([1, 2, 3]);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(140);
    expect(seen[2]!.at - seen[1]!.at).toBeGreaterThanOrEqual(290);
    expect(dl!.subject).toBe(subject);
    expect([...dl!.payload]).toEqual([...event.payload]);
    expect(dl!.headers).toMatchObject({
      [HEADERS.deadLetterSubject]: event.subject,
      [HEADERS.deadLetterStream]: 'SEALPOST_VAULT',
      [HEADERS.deadLetterSeq]: String(ack.seq),
      [HEADERS.deadLetterReason]: 'max-deliveries',
      [HEADERS.deadLetterDeliveries]: '3',
      [HEADERS.deadLetterConsumer]: durable,
      [HEADERS.deadLetterEventId]: event.id,
    });
    // Terminated: no fourth delivery, and filed once.
    await sleep(600);
    expect(seen).toHaveLength(3);
    expect(await harness.deadLetters(subject)).toHaveLength(1);
  });

  it('dead-letters a poison message at once and carries on with the next', async () => {
    const tenant = tenantId();
    await vault.publish(vaultEvent(tenant, 'c-1', 1, 'poison'));
    await vault.publish(vaultEvent(tenant, 'c-2', 1, 'fine'));
    const calls: string[] = [];
    const { durable } = await consume(
      tenant,
      (e) => {
        const text = Buffer.from(e.payload).toString();
        calls.push(text);
        if (text === 'poison') throw new PoisonMessageError('unknown-schema');
      },
      { maxDeliver: 5, backoffMs: [50] },
    );
    const [dl] = await until('dead letter', async () => {
      const list = await harness.deadLetters(deadLetterSubject('dispatch', durable));
      return list.length > 0 ? list : undefined;
    });
    expect(dl!.headers[HEADERS.deadLetterReason]).toBe('poison:unknown-schema');
    expect(dl!.headers[HEADERS.deadLetterDeliveries]).toBe('1');
    await waitFor('next message', () => calls.includes('fine'));
    await sleep(300);
    expect(calls).toEqual(['poison', 'fine']);
  });

  it('dead-letters an undecodable message without calling the handler', async () => {
    const tenant = tenantId();
    const subject = eventSubject('vault', tenant, 'contact-upserted');
    await harness.injectRaw(subject, new Uint8Array([1, 2]), { 'x-junk': '1' }, `raw-${tenant}`);
    await vault.publish(vaultEvent(tenant, 'c-2', 1, 'fine'));
    const calls: string[] = [];
    const { durable } = await consume(tenant, (e) => void calls.push(e.aggregateId));
    const [dl] = await until('dead letter', async () => {
      const list = await harness.deadLetters(deadLetterSubject('dispatch', durable));
      return list.length > 0 ? list : undefined;
    });
    expect(dl!.headers[HEADERS.deadLetterReason]).toBe('undecodable');
    expect(dl!.headers[HEADERS.deadLetterSubject]).toBe(subject);
    await waitFor('good message', () => calls.length === 1);
    expect(calls).toEqual(['c-2']);
  });

  it('publishMany stores in order, acks in order, and dedupes ids seen before and within the batch', async () => {
    const tenant = tenantId();
    expect(await vault.publishMany([])).toEqual([]);
    const earlier = vaultEvent(tenant, 'c-0', 1);
    const first = await vault.publish(earlier);
    const fresh = [1, 2, 3, 4].map((v) => vaultEvent(tenant, `c-${v}`, 1, `m${v}`));
    const batch = [fresh[0]!, fresh[1]!, earlier, fresh[2]!, fresh[0]!, fresh[3]!];
    const acks = await vault.publishMany(batch);
    expect(acks.map((a) => a.duplicate)).toEqual([false, false, true, false, true, false]);
    expect(acks[2]).toEqual({ stream: first.stream, seq: first.seq, duplicate: true });
    expect(acks[4]!.seq).toBe(acks[0]!.seq);
    const stored = acks.filter((a) => !a.duplicate).map((a) => a.seq);
    expect(stored).toEqual([...stored].sort((a, b) => a - b));
    expect(stored[0]).toBeGreaterThan(first.seq);
    expect(new Set(acks.map((a) => a.stream))).toEqual(new Set(['SEALPOST_VAULT']));

    // One foreign or invalid envelope refuses the whole call before anything is sent.
    const foreign = { ...vaultEvent(tenant, 'c-9', 1), subject: eventSubject('consent', tenant, 'confirmed') };
    const unsent = vaultEvent(tenant, 'c-8', 1, 'unsent');
    await expect(vault.publishMany([unsent, foreign])).rejects.toThrow(PublishNotAllowedError);
    await expect(vault.publishMany([unsent, { ...unsent, aggregateVersion: 0 }])).rejects.toMatchObject({
      code: 'BUS_INVALID_ENVELOPE',
    });

    const got: ReceivedEvent[] = [];
    await consume(tenant, (e) => void got.push(e));
    await waitFor('five events', () => got.length >= 5);
    await sleep(300);
    expect(got.map((e) => e.id)).toEqual([earlier.id, ...fresh.map((e) => e.id)]);
    expect(got.map((e) => e.streamSeq)).toEqual([first.seq, ...stored]);
  });

  it('consumeBatches acks a batch, dead-letters only the poison in it and retries only the failing one', async () => {
    // How a burst splits into batches is up to the transport (a TLS cluster may hand the five events over in
    // several reads), so the scenario is run again, on fresh events, until the poison shares its batch.
    for (let attempt = 1; ; attempt++) {
      const poisonBatch = await poisonInABatch();
      if (poisonBatch.length > 1 || attempt === 3) {
        expect(poisonBatch.length).toBeGreaterThan(1);
        return;
      }
    }
  });

  /** Runs the poison/flaky batch scenario once; returns the batch the poison arrived in. */
  async function poisonInABatch(): Promise<ReceivedEvent[]> {
    const tenant = tenantId();
    const events = [1, 2, 3, 4, 5].map((v) => vaultEvent(tenant, `c-${v}`, 1, `m${v}`));
    const acks = await vault.publishMany(events);
    const poison = events[2]!;
    const flaky = events[3]!;
    const batches: ReceivedEvent[][] = [];
    const { durable } = await consumeBatches(
      tenant,
      (batch) => {
        batches.push([...batch]);
        const failures = new Map<string, BatchFailure>();
        for (const e of batch) {
          if (e.id === poison.id) failures.set(e.id, new PoisonMessageError('unknown-schema'));
          if (e.id === flaky.id && e.deliveries === 1) failures.set(e.id, 'retry');
        }
        return { failures };
      },
      { batch: 10, maxDeliver: 3, backoffMs: [100] },
    );
    const [dl] = await until('dead letter', async () => {
      const list = await harness.deadLetters(deadLetterSubject('dispatch', durable));
      return list.length > 0 ? list : undefined;
    });
    expect(dl!.headers).toMatchObject({
      [HEADERS.deadLetterEventId]: poison.id,
      [HEADERS.deadLetterReason]: 'poison:unknown-schema',
      [HEADERS.deadLetterDeliveries]: '1',
      [HEADERS.deadLetterSeq]: String(acks[2]!.seq),
    });
    await waitFor('flaky event redelivered', () => batches.flat().some((e) => e.id === flaky.id && e.deliveries === 2));
    await sleep(2500); // past the ack wait: nothing acked comes back
    const deliveries = (id: string) =>
      batches
        .flat()
        .filter((e) => e.id === id)
        .map((e) => e.deliveries);
    expect(events.map((e) => deliveries(e.id))).toEqual([[1], [1], [1], [1, 2], [1]]);
    // Only the poison was dead-lettered.
    const poisonBatch = batches.find((b) => b.some((e) => e.id === poison.id))!;
    expect(await harness.deadLetters(deadLetterSubject('dispatch', durable))).toHaveLength(1);
    // Batches are in stream order and never empty.
    for (const b of batches) {
      expect(b.length).toBeGreaterThan(0);
      expect(b.map((e) => e.streamSeq)).toEqual([...b.map((e) => e.streamSeq)].sort((x, y) => x - y));
    }
    return poisonBatch;
  }

  it('consumeBatches: a thrown handler error retries the whole batch, then dead-letters at maxDeliver', async () => {
    const tenant = tenantId();
    const events = [1, 2].map((v) => vaultEvent(tenant, `c-${v}`, 1));
    await vault.publishMany(events);
    const seen: number[] = [];
    const { durable } = await consumeBatches(
      tenant,
      (batch) => {
        for (const e of batch) seen.push(e.deliveries);
        throw new Error('downstream unavailable');
      },
      { maxDeliver: 2, backoffMs: [100] },
    );
    const list = await until('two dead letters', async () => {
      const found = await harness.deadLetters(deadLetterSubject('dispatch', durable));
      return found.length >= 2 ? found : undefined;
    });
    expect(list.map((d) => d.headers[HEADERS.deadLetterReason])).toEqual(['max-deliveries', 'max-deliveries']);
    expect(list.map((d) => d.headers[HEADERS.deadLetterEventId]).sort()).toEqual(events.map((e) => e.id).sort());
    await sleep(300);
    expect(seen.sort()).toEqual([1, 1, 2, 2]);
  });

  it.each(['single', 'batch'] as const)(
    'loses nothing and applies nothing twice when a %s consumer process is SIGKILLed before acking',
    async (mode) => {
      const tenant = tenantId();
      const durable = durableName();
      const storeFile = join(dir.path, `crash-${tenant}.sqlite`);
      const ackWaitMs = 1500;
      for (let i = 1; i <= 10; i++) await vault.publish(vaultEvent(tenant, `a${String(i).padStart(2, '0')}`, 1));

      // `node --import tsx` (not the tsx CLI, which forks a second process) so SIGKILL hits the consumer itself.
      const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/consumer-child.ts')], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          SEALPOST_BUS_CHILD: JSON.stringify({
            bus: harness.childConfig(),
            storeFile,
            durable,
            tenant,
            holdAfter: 3,
            ackWaitMs,
            mode,
          }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      try {
        await waitFor('child to hold an unacked message', () => out.includes('holding'), { timeoutMs: 20_000 });
      } catch (error) {
        child.kill('SIGKILL');
        throw new Error(`child did not reach the hold point; stderr: ${err.slice(0, 500)}`, { cause: error });
      }
      child.kill('SIGKILL');
      const signal = await exited;
      if (signal !== 'SIGKILL') throw new Error(`child ended on its own: ${out} ${err}`);
      const childApplied = out.split('\n').filter((l) => /^applied \S+ true$/.test(l)).length;
      expect(childApplied).toBe(3);

      // Restart: the same durable picks up everything unacked once the dead process's ack wait passes.
      const store = new Database(storeFile);
      ensureEffects(store);
      const redelivered: ReceivedEvent[] = [];
      let parentApplied = 0;
      const apply = (e: ReceivedEvent) => {
        redelivered.push(e);
        if (applyEffect(store, e)) parentApplied++;
      };
      if (mode === 'single') await consume(tenant, apply, { durable, ackWaitMs });
      else await consumeBatches(tenant, (events) => events.forEach(apply), { durable, ackWaitMs });
      await waitFor('all ten effects', () => effectRows(store).length === 10, { timeoutMs: 15_000 });
      await sleep(ackWaitMs + 300);
      const rows = effectRows(store);
      expect(rows.map((r) => r.count)).toEqual(Array(10).fill(1));
      expect(childApplied + parentApplied).toBe(10);
      // The third event was applied by the child but never acked: it came back, and apply-once skipped it.
      const third = redelivered.find((e) => e.aggregateId === 'a03');
      expect(third?.deliveries).toBeGreaterThanOrEqual(2);
      store.close();
    },
    40_000,
  );

  describe('outbox relay', () => {
    interface World {
      writer: Database.Database;
      write(aggregate: string, version: number, state: string): EventEnvelope;
      pending(): number;
    }

    // An aggregate table + outbox in a service's SQLite file; state change and event in ONE transaction.
    function world(tenant: string): World {
      const file = join(dir.path, `svc-${tenant}.sqlite`);
      const writer = new Database(file);
      writer.pragma('journal_mode = WAL');
      writer.exec('CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, state TEXT, version INTEGER)');
      ensureSqliteOutbox(writer);
      return {
        writer,
        write(aggregate, version, state) {
          const event = vaultEvent(tenant, aggregate, version, state);
          writer
            .transaction(() => {
              writer
                .prepare(
                  'INSERT INTO contacts (id, state, version) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version',
                )
                .run(aggregate, state, version);
              appendPendingEvent(writer, aggregate, event);
            })
            .immediate();
          return event;
        },
        pending: () => (writer.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n,
      };
    }

    function countingPublisher(inner: EventPublisher) {
      const acks: PublishAck[] = [];
      return {
        acks,
        publish: async (e: EventEnvelope) => {
          const ack = await inner.publish(e);
          acks.push(ack);
          return ack;
        },
      };
    }

    it('loses nothing when the relay crashes between write and publish, or between publish and removal', async () => {
      const tenant = tenantId();
      const w = world(tenant);
      // Written while no relay runs (the relay "crashed" before publishing anything).
      const events = [1, 2, 3, 4, 5].map((i) => w.write(`c${i}`, 1, `s${i}`));
      const leaseDb = new Database(join(dir.path, `lease-${tenant}.sqlite`));
      const leases = new SqliteLeaseStore(leaseDb);
      const source = new SqliteOutboxSource(w.writer);
      // First relay dies right after the bus acknowledged the third event, before removing it.
      let removals = 0;
      const crashing = {
        listPending: (limit: number) => source.listPending(limit),
        removeEvent: async (key: string, entry: OutboxEntry) => {
          if (++removals === 3) throw new Error('SIGKILL');
          await source.removeEvent(key, entry);
        },
      };
      const first = countingPublisher(vault);
      const dead = new OutboxRelay({
        source: crashing,
        publisher: first,
        leases,
        leaseName: `outbox-${tenant}`,
        holder: 'relay-1',
        leaseTtlMs: 600,
      });
      await expect(dead.runOnce()).rejects.toThrow('SIGKILL');
      expect(first.acks).toHaveLength(3);
      expect(w.pending()).toBe(3);

      // A new relay takes over once the dead one's lease expires, and republishes the unremoved event.
      const second = countingPublisher(vault);
      const relay = new OutboxRelay({
        source,
        publisher: second,
        leases,
        leaseName: `outbox-${tenant}`,
        holder: 'relay-2',
        leaseTtlMs: 600,
        pollIntervalMs: 50,
      });
      relay.start();
      await waitFor('outbox drained', () => w.pending() === 0, { timeoutMs: 5000 });
      await relay.stop();
      expect(second.acks.map((a) => a.duplicate)).toEqual([true, false, false]);

      const got: ReceivedEvent[] = [];
      await consume(tenant, (e) => void got.push(e));
      await waitFor('five events', () => got.length >= 5);
      await sleep(300);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      w.writer.close();
      leaseDb.close();
    });

    it('two relays running at once publish each event once (only the lease holder publishes)', async () => {
      const tenant = tenantId();
      const w = world(tenant);
      const events = Array.from({ length: 20 }, (_, i) => w.write(`c${i}`, 1, `s${i}`));
      const leaseFile = join(dir.path, `lease2-${tenant}.sqlite`);
      // Two "processes": separate connections to the service file and the lease table.
      const relays = ['relay-a', 'relay-b'].map((holder) => {
        const db = new Database(join(dir.path, `svc-${tenant}.sqlite`));
        const leaseDb = new Database(leaseFile);
        const publisher = countingPublisher(vault);
        const relay = new OutboxRelay({
          source: new SqliteOutboxSource(db),
          publisher,
          leases: new SqliteLeaseStore(leaseDb),
          leaseName: `outbox-${tenant}`,
          holder,
          leaseTtlMs: 2000,
          pollIntervalMs: 20,
          batch: 3,
        });
        return { relay, publisher, close: () => (db.close(), leaseDb.close()) };
      });
      relays.forEach((r) => r.relay.start());
      await waitFor('outbox drained', () => w.pending() === 0, { timeoutMs: 10_000 });
      await Promise.all(relays.map((r) => r.relay.stop()));
      const counts = relays.map((r) => r.publisher.acks.length).sort((a, b) => a - b);
      expect(counts).toEqual([0, 20]);
      expect(relays.flatMap((r) => r.publisher.acks).every((a) => !a.duplicate)).toBe(true);
      const got: ReceivedEvent[] = [];
      await consume(tenant, (e) => void got.push(e));
      await waitFor('twenty events', () => got.length >= 20);
      await sleep(300);
      expect(got.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort());
      relays.forEach((r) => r.close());
      w.writer.close();
    });

    /** Publishes through the bus under test, recording each publishMany batch (and any single publish). */
    function batchRecorder(inner: ServiceBus, onBatch?: (batch: readonly EventEnvelope[]) => Promise<void>) {
      const batches: EventEnvelope[][] = [];
      let singles = 0;
      return {
        batches,
        singles: () => singles,
        publish: (e: EventEnvelope) => {
          singles++;
          return inner.publish(e);
        },
        publishMany: async (envelopes: readonly EventEnvelope[]) => {
          const acks = await inner.publishMany(envelopes);
          batches.push([...envelopes]);
          await onBatch?.(envelopes);
          return acks;
        },
      };
    }

    it('relays in batches: one publishMany per batch, at most one event per aggregate in a batch, order kept', async () => {
      const tenant = tenantId();
      const w = world(tenant);
      // c0 has three versions, c1 two, the rest one; written interleaved as a busy service would.
      const events = [
        w.write('c0', 1, 's'),
        w.write('c1', 1, 's'),
        w.write('c0', 2, 's'),
        ...[2, 3, 4, 5, 6].map((i) => w.write(`c${i}`, 1, 's')),
        w.write('c1', 2, 's'),
        w.write('c0', 3, 's'),
      ];
      const leaseDb = new Database(join(dir.path, `lease-b-${tenant}.sqlite`));
      const publisher = batchRecorder(vault);
      const relay = new OutboxRelay({
        source: new SqliteOutboxSource(w.writer),
        publisher,
        leases: new SqliteLeaseStore(leaseDb),
        leaseName: `outbox-${tenant}`,
        holder: 'relay-1',
        publishBatch: 4,
      });
      let relayed = 0;
      for (let pass = 0; pass < 10 && w.pending() > 0; pass++) {
        const r = await relay.runOnce();
        relayed += r.published + r.duplicates;
      }
      await relay.stop();
      expect(w.pending()).toBe(0);
      expect(relayed).toBe(events.length);
      expect(publisher.singles()).toBe(0);
      // 7 first versions in batches of ≤ 4, then the 2 second versions, then the third.
      expect(publisher.batches.map((b) => b.length)).toEqual([4, 3, 2, 1]);
      for (const batch of publisher.batches) {
        expect(new Set(batch.map((e) => e.aggregateId)).size).toBe(batch.length);
      }
      const got: ReceivedEvent[] = [];
      await consume(tenant, (e) => void got.push(e));
      await waitFor('every event', () => got.length >= events.length);
      await sleep(300);
      expect(got.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort());
      for (const aggregate of ['c0', 'c1']) {
        expect(got.filter((e) => e.aggregateId === aggregate).map((e) => e.aggregateVersion)).toEqual(
          aggregate === 'c0' ? [1, 2, 3] : [1, 2],
        );
      }
      w.writer.close();
      leaseDb.close();
    });

    it('a relay that loses its lease during a batch publishes no further batch; the new holder relays the rest once', async () => {
      const tenant = tenantId();
      const w = world(tenant);
      const events = Array.from({ length: 12 }, (_, i) => w.write(`c${i}`, 1, `s${i}`));
      const leaseDb = new Database(join(dir.path, `lease-l-${tenant}.sqlite`));
      const leases = new SqliteLeaseStore(leaseDb);
      const leaseName = `outbox-${tenant}`;
      let takenOver = false;
      // The first batch outlives the lease (a long pause); meanwhile another replica takes the lease over.
      const slow = batchRecorder(vault, async () => {
        if (takenOver) return;
        await sleep(500);
        takenOver = (await leases.tryAcquire(leaseName, 'relay-2', 10_000)) !== null;
      });
      const first = new OutboxRelay({
        source: new SqliteOutboxSource(w.writer),
        publisher: slow,
        leases,
        leaseName,
        holder: 'relay-1',
        leaseTtlMs: 300,
        publishBatch: 4,
      });
      expect(await first.runOnce()).toEqual({ published: 4, duplicates: 0 });
      expect(takenOver).toBe(true);
      expect(slow.batches).toHaveLength(1);
      expect(first.lease).toBeNull();
      expect(w.pending()).toBe(8);
      // Another pass of the fenced relay publishes nothing: the lease is held by relay-2.
      expect(await first.runOnce()).toEqual({ published: 0, duplicates: 0 });

      const next = batchRecorder(vault);
      const second = new OutboxRelay({
        source: new SqliteOutboxSource(w.writer),
        publisher: next,
        leases,
        leaseName,
        holder: 'relay-2',
        leaseTtlMs: 10_000,
        publishBatch: 4,
      });
      expect(await second.runOnce()).toEqual({ published: 8, duplicates: 0 });
      expect(w.pending()).toBe(0);
      await second.stop();
      await first.stop();
      const got: ReceivedEvent[] = [];
      await consume(tenant, (e) => void got.push(e));
      await waitFor('twelve events', () => got.length >= 12);
      await sleep(300);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      w.writer.close();
      leaseDb.close();
    });
  });

  it('consumeBatches runs the handler in one CONSUMER span linked to each producer span', async () => {
    const tenant = tenantId();
    const canary = 'bob@example.com';
    const events = [1, 2, 3].map((v) => vaultEvent(tenant, `c-${v}`, 1, canary));
    await vault.publishMany(events);
    const producers = tracing
      .spans()
      .filter((s) => s.kind === SpanKind.PRODUCER && events.some((e) => e.id === s.attributes['messaging.message.id']));
    expect(producers).toHaveLength(3);
    const traceIds: string[] = [];
    let seen = 0;
    await consumeBatches(tenant, (batch) => {
      traceIds.push(trace.getActiveSpan()?.spanContext().traceId ?? '');
      seen += batch.length;
    });
    await waitFor('all three handled', () => seen >= 3);
    const batchSpans = await until('batch spans ended', () => {
      const list = tracing
        .spans()
        .filter((s) => traceIds.includes(s.spanContext().traceId) && s.kind === SpanKind.CONSUMER);
      return list.length === traceIds.length ? list : undefined;
    });
    const linked = batchSpans
      .flatMap((s) => s.links.map((l: { context: { spanId: string } }) => l.context.spanId))
      .sort();
    expect(linked).toEqual(producers.map((p) => p.spanContext().spanId).sort());
    for (const s of [...batchSpans, ...producers]) expect(JSON.stringify(s.attributes)).not.toContain(canary);
  });

  it('carries W3C trace context across the bus with PRODUCER and CONSUMER spans and no payload in attributes', async () => {
    const tenant = tenantId();
    const canary = 'alice@example.com';
    const tracer = trace.getTracer('test');
    let requestTraceId = '';
    await tracer.startActiveSpan('request', async (span) => {
      requestTraceId = span.spanContext().traceId;
      // Created inside the request, published later (as the outbox relay does) outside it.
      const event = vaultEvent(tenant, 'c-1', 1, canary);
      span.end();
      await vault.publish(event);
    });
    let handlerTraceId = '';
    await consume(tenant, () => {
      handlerTraceId = trace.getActiveSpan()?.spanContext().traceId ?? '';
    });
    await waitFor('handler ran', () => handlerTraceId !== '');
    expect(handlerTraceId).toBe(requestTraceId);
    const spans = await until('consumer span ended', () => {
      const list = tracing.spans().filter((s) => s.spanContext().traceId === requestTraceId);
      return list.some((s) => s.kind === SpanKind.CONSUMER) ? list : undefined;
    });
    const producer = spans.find((s) => s.kind === SpanKind.PRODUCER)!;
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER)!;
    const request = spans.find((s) => s.name === 'request')!;
    expect(tracing.parentOf(producer)).toBe(request.spanContext().spanId);
    expect(tracing.parentOf(consumer)).toBe(producer.spanContext().spanId);
    expect(producer.attributes['messaging.destination.name']).toBe(eventSubject('vault', tenant, 'contact-upserted'));
    for (const s of spans) expect(JSON.stringify(s.attributes)).not.toContain(canary);
  });
}
