/**
 * The embedded bus: the port's semantics (durable consumers, explicit acks, redelivery after ack wait,
 * backoff, dead-letter, dedupe window) on one SQLite file, for running every service in one process.
 * Several service handles share one `EmbeddedBus`; other processes may open the same file.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { WalCheckpointer } from '@sealpost/storage';
import { BusMetrics } from '../bus-metrics';
import { resolveConsumeOptions, type RawDelivery, type ResolvedConsumeOptions } from '../delivery-policy';
import { DEFAULT_MAX_PAYLOAD_BYTES, envelopeToHeaders, validateEnvelope } from '../envelope';
import { BusClosedError, PublishNotAllowedError } from '../errors';
import type {
  BatchHandler,
  BusErrorReporter,
  ConsumeOptions,
  EventEnvelope,
  EventHandler,
  PublishAck,
  ServiceBus,
  Subscription,
} from '../port';
import { processBatch, processDelivery, type DeliveryControl } from '../process-delivery';
import { streamsOwnedBy, type StreamSettings } from '../stream-config';
import { mayPublish, type ServiceName } from '../topology';
import { startProducerSpan } from '../trace';
import { GroupCommit } from './group-commit';
import { SqliteBusStore, type StoredMessage } from './sqlite-bus-store';
import { errorCode } from '@sealpost/telemetry';

export interface EmbeddedBusOptions {
  readonly streams?: StreamSettings;
  readonly maxPayloadBytes?: number;
  /**
   * How often an idle consumer looks for work published by another process (default 500 ms). Work from
   * this process wakes consumers after `wakeDelayMs`; redeliveries wake them when due.
   */
  readonly pollIntervalMs?: number;
  /**
   * How long an idle consumer lets work from this process gather before it fetches (default 10 ms). A fetch,
   * its commit and the handler's own writes (the audit log's fsync) run on the event loop the publishers share;
   * gathered, they are paid once per batch instead of once per event, in front of the next caller.
   */
  readonly wakeDelayMs?: number;
  /** Checkpoint the WAL from a worker thread instead of inside commits (default true; see `WalCheckpointer`). */
  readonly checkpointInWorker?: boolean;
  /** Retention sweep interval (default 60 s). */
  readonly pruneIntervalMs?: number;
  readonly onError?: BusErrorReporter;
}

const DEFAULT_WAKE_DELAY_MS = 10;

const defaultReporter: BusErrorReporter = (error, where) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'warn', msg: 'bus error', where, code: errorCode(error, 'unknown') })}\n`,
  );
};

/** One bus file shared by all services of the process. */
export class EmbeddedBus {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly handles = new Set<EmbeddedServiceBus>();
  private readonly pruneTimer: NodeJS.Timeout;
  private closed = false;
  readonly onError: BusErrorReporter;
  /** @internal every write of this process goes through it: concurrent writes share one commit. */
  readonly writes: GroupCommit;
  /** @internal */
  readonly metrics = new BusMetrics();
  private readonly checkpointer: WalCheckpointer | undefined;

  private constructor(
    readonly store: SqliteBusStore,
    readonly options: EmbeddedBusOptions,
  ) {
    this.onError = options.onError ?? defaultReporter;
    this.writes = new GroupCommit(store.db);
    if ((options.checkpointInWorker ?? true) && !store.db.memory) {
      this.checkpointer = WalCheckpointer.start(store.db, store.db.name, {
        onError: (error) => this.onError(error, 'embedded.checkpoint'),
      });
    }
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), options.pruneIntervalMs ?? 60_000);
    this.pruneTimer.unref();
  }

  /** Opens (creating if needed) the bus file. */
  static open(file: string, options: EmbeddedBusOptions = {}): EmbeddedBus {
    return new EmbeddedBus(new SqliteBusStore(file), options);
  }

  /** A publisher/consumer bound to one service identity; publishes are checked against its grant. */
  forService(service: ServiceName): EmbeddedServiceBus {
    if (this.closed) throw new BusClosedError();
    const handle = new EmbeddedServiceBus(this, service, (h) => this.handles.delete(h));
    this.handles.add(handle);
    return handle;
  }

  /** Reads a stream's stored messages, e.g. the dead-letter stream for an operator. */
  read(stream: string, options: { subject?: string; fromSeq?: number; limit?: number } = {}): StoredMessage[] {
    return this.store.read(stream, options);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * @internal wakes consumers of `stream` after a commit — after `wakeDelayMs`, never within the commit's turn: a
   * consumer's fetch and handler run synchronously (SQLite), and the publisher waiting for this ack (a reveal
   * answering its caller) must not wait behind them.
   */
  notify(stream: string): void {
    const set = this.waiters.get(stream);
    if (set === undefined) return;
    this.waiters.delete(stream);
    const wakeAll = (): void => {
      for (const wake of set) wake();
    };
    const delay = this.options.wakeDelayMs ?? DEFAULT_WAKE_DELAY_MS;
    if (delay > 0) setTimeout(wakeAll, delay).unref();
    else setImmediate(wakeAll);
  }

  /** @internal resolves on `notify(stream)` or after `ms` */
  waitFor(stream: string, ms: number): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    const timer = setTimeout(wake, ms);
    const set = this.waiters.get(stream) ?? new Set();
    set.add(wake);
    this.waiters.set(stream, set);
    const cancel = () => {
      clearTimeout(timer);
      set.delete(wake);
      wake();
    };
    void promise.then(() => {
      clearTimeout(timer);
      set.delete(wake);
    });
    return { promise, cancel };
  }

  private prune(): void {
    try {
      this.store.prune(Date.now());
    } catch (error) {
      this.onError(error, 'embedded.prune');
    }
  }

  /** Stops every handle's consumers (draining), then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pruneTimer);
    await Promise.all([...this.handles].map((handle) => handle.close()));
    // Writes still queued (publishes awaiting their commit, deferred acks) are committed, not dropped.
    this.writes.close();
    await this.checkpointer?.stop();
    this.store.close();
  }
}

/** A service's view of the embedded bus. */
export class EmbeddedServiceBus implements ServiceBus {
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private closed = false;

  constructor(
    readonly bus: EmbeddedBus,
    readonly service: ServiceName,
    private readonly onClosed: (handle: EmbeddedServiceBus) => void,
  ) {}

  publish(envelope: EventEnvelope): Promise<PublishAck> {
    return this.publishMany([envelope]).then((acks) => acks[0]!);
  }

  /** All events of the call are stored in ONE transaction (all or none), shared with concurrent writes. */
  async publishMany(envelopes: readonly EventEnvelope[]): Promise<PublishAck[]> {
    const { metrics } = this.bus;
    for (const envelope of envelopes) {
      try {
        this.check(envelope);
      } catch (error) {
        metrics.refused(envelope);
        throw error;
      }
    }
    if (envelopes.length === 0) return [];
    const spans = envelopes.map((envelope) => startProducerSpan('sealpost-embedded', envelope));
    const { store } = this.bus;
    try {
      const now = Date.now();
      const messages = envelopes.map((envelope, i) => ({
        subject: envelope.subject,
        payload: envelope.payload,
        headers: envelopeToHeaders({ ...envelope, headers: spans[i]!.headers }),
        msgId: envelope.id,
      }));
      const acks = await this.bus.writes.write(() => store.appendMany(messages, now));
      for (const stream of new Set(acks.filter((a) => !a.duplicate).map((a) => a.stream))) this.bus.notify(stream);
      for (const span of spans) span.end();
      metrics.publishedAll(envelopes, acks);
      return acks;
    } catch (error) {
      for (const span of spans) span.end(error);
      metrics.publishedAll(envelopes, null);
      throw error;
    }
  }

  private check(envelope: EventEnvelope): void {
    if (this.closed || this.bus.isClosed) throw new BusClosedError();
    if (!mayPublish(this.service, envelope.subject)) throw new PublishNotAllowedError(this.service, envelope.subject);
    validateEnvelope(envelope, this.bus.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  }

  async ensureStreams(): Promise<void> {
    for (const spec of streamsOwnedBy(this.service, this.bus.options.streams)) this.bus.store.upsertStream(spec);
  }

  async consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription> {
    return this.subscribe(options, { kind: 'single', handler });
  }

  async consumeBatches(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    return this.subscribe(options, { kind: 'batch', handler });
  }

  private subscribe(options: ConsumeOptions, handling: Handling): Subscription {
    if (this.closed || this.bus.isClosed) throw new BusClosedError();
    const resolved = resolveConsumeOptions(this.service, options);
    this.bus.store.upsertConsumer(resolved.stream, resolved.durable, resolved.filterSubjects);
    const subscription = new EmbeddedSubscription(this, resolved, handling, (sub) => this.subscriptions.delete(sub));
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((sub) => sub.stop()));
    this.onClosed(this);
  }
}

type Handling =
  | { readonly kind: 'single'; readonly handler: EventHandler }
  | { readonly kind: 'batch'; readonly handler: BatchHandler };

class EmbeddedSubscription implements Subscription {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private cancelWait: (() => void) | undefined;
  /** Acks (visibleAt undefined) and retries settled since the last fetch; they commit with the next one. */
  private settled: { readonly seq: number; readonly visibleAt: number | undefined }[] = [];

  constructor(
    private readonly handle: EmbeddedServiceBus,
    private readonly options: ResolvedConsumeOptions,
    private readonly handling: Handling,
    private readonly onStopped: (sub: EmbeddedSubscription) => void,
  ) {}

  get durable(): string {
    return this.options.durable;
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const { bus } = this.handle;
    const { stream, durable } = this.options;
    const poll = bus.options.pollIntervalMs ?? 500;
    while (!this.stopping) {
      let handled = 0;
      try {
        // Deferred acks/retries of the previous batch commit in the same transaction as this fetch.
        this.queueSettled();
        const deliveries =
          bus.writes.flush(
            () =>
              bus.store.fetch(
                {
                  stream,
                  durable,
                  filters: this.options.filterSubjects,
                  batch: this.options.batch,
                  maxAckPending: this.options.maxAckPending,
                  ackWaitMs: this.options.ackWaitMs,
                },
                Date.now(),
              ),
            'relaxed',
          ) ?? [];
        this.recordLag();
        // Everything fetched is handled even when stopping: that is the drain.
        if (this.handling.kind === 'batch') {
          if (deliveries.length > 0) await this.handleBatch(deliveries, this.handling.handler);
        } else {
          for (const raw of deliveries) await this.handleOne(raw, this.handling.handler);
        }
        handled = deliveries.length;
      } catch (error) {
        bus.onError(error, 'embedded.fetch');
      }
      if (this.stopping) break;
      if (handled > 0) {
        // Let timers and I/O run between batches even when handlers are synchronous.
        await yieldToEventLoop();
        continue;
      }
      const due = bus.store.nextDueAt(stream, durable);
      const waitMs = Math.max(0, Math.min(poll, due === null ? poll : due - Date.now()));
      const wait = bus.waitFor(stream, waitMs);
      this.cancelWait = wait.cancel;
      await wait.promise;
    }
    // Drained: commit the last deferred acks before reporting the subscription stopped.
    try {
      this.queueSettled();
      bus.writes.flush();
    } catch (error) {
      bus.onError(error, 'embedded.ack');
    }
  }

  /**
   * Queues the acks/retries collected since the last fetch as ONE group-commit write (one savepoint, not one per
   * message); the fetch right after flushes it in its own transaction, so a batch costs one commit, not two.
   */
  private queueSettled(): void {
    if (this.settled.length === 0) return;
    const { bus } = this.handle;
    const { stream, durable } = this.options;
    const settled = this.settled;
    this.settled = [];
    bus.writes
      .write(() => {
        const acked: number[] = [];
        for (const { seq, visibleAt } of settled) {
          if (visibleAt === undefined) acked.push(seq);
          else bus.store.retryAt(stream, durable, seq, visibleAt);
        }
        bus.store.ackMany(stream, durable, acked);
      }, 'relaxed')
      .catch((error: unknown) => bus.onError(error, 'embedded.ack'));
  }

  /** Messages not yet handed to this consumer, read right after a fetch (two key lookups). */
  private recordLag(): void {
    const { bus } = this.handle;
    const { stream, durable } = this.options;
    bus.metrics.lag(durable, stream, bus.store.consumerLag(stream, durable));
  }

  /**
   * Acks and retries are deferred writes: collected per subscription and committed with its next fetch (which
   * follows every handled batch at once) or its drain, not one transaction each. A crash before that commit redelivers those messages after their ack wait,
   * which apply-once absorbs. Dead-letters are awaited: the copy is durable before the next delivery.
   */
  private control(seq: number): DeliveryControl {
    const { bus, service } = this.handle;
    const { stream, durable } = this.options;
    return {
      ack: () => {
        this.settled.push({ seq, visibleAt: undefined });
      },
      retry: (delayMs) => {
        this.settled.push({ seq, visibleAt: Date.now() + delayMs });
      },
      deadLetter: async (dl) => {
        if (!mayPublish(service, dl.subject)) throw new PublishNotAllowedError(service, dl.subject);
        const ack = await bus.writes.write(() => bus.store.deadLetter({ stream, durable, seq }, dl, Date.now()));
        bus.notify(ack.stream);
      },
    };
  }

  private async handleBatch(deliveries: RawDelivery[], handler: BatchHandler): Promise<void> {
    const { bus, service } = this.handle;
    const maxPayloadBytes = bus.options.maxPayloadBytes;
    await processBatch(
      deliveries.map((raw) => ({ raw, control: this.control(raw.streamSeq) })),
      {
        service,
        system: 'sealpost-embedded',
        options: this.options,
        handler,
        onSettleError: (error) => bus.onError(error, 'embedded.settle'),
        metrics: bus.metrics,
        ...(maxPayloadBytes !== undefined ? { maxPayloadBytes } : {}),
      },
    );
  }

  private async handleOne(raw: RawDelivery, handler: EventHandler): Promise<void> {
    const { bus, service } = this.handle;
    const maxPayloadBytes = bus.options.maxPayloadBytes;
    try {
      await processDelivery(raw, this.control(raw.streamSeq), {
        service,
        system: 'sealpost-embedded',
        options: this.options,
        handler,
        metrics: bus.metrics,
        ...(maxPayloadBytes !== undefined ? { maxPayloadBytes } : {}),
      });
    } catch (error) {
      // Settling failed: the delivery stays pending and comes back after its ack wait.
      bus.onError(error, 'embedded.settle');
    }
  }

  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.cancelWait?.();
    }
    await this.loop;
    this.onStopped(this);
  }
}
