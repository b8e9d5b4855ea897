/**
 * JetStream adapter of the bus port: per-domain file streams, `Nats-Msg-Id` dedupe, durable pull consumers
 * with explicit acks, client-bounded redelivery with nak backoff, and a dead-letter stream.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { BusMetrics } from '../bus-metrics';
import {
  resolveConsumeOptions,
  type DeadLetterMessage,
  type RawDelivery,
  type ResolvedConsumeOptions,
} from '../delivery-policy';
import { DEFAULT_MAX_PAYLOAD_BYTES, HEADERS, envelopeToHeaders, validateEnvelope } from '../envelope';
import { BusClosedError, NoStreamError, PublishNotAllowedError } from '../errors';
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
import { streamsOwnedBy, type StreamSettings, type StreamSpec } from '../stream-config';
import { mayPublish, type ServiceName } from '../topology';
import { startProducerSpan } from '../trace';
import { PipelinedPublisher } from './pipelined-publisher';
import { PullStream, type PulledMessage } from './pull-stream';
import { toNatsConnectOptions, type NatsConnectionSettings } from './connection-options';
import { errorCode } from '@sealpost/telemetry';

export interface NatsBusOptions {
  readonly service: ServiceName;
  readonly streams?: StreamSettings;
  readonly maxPayloadBytes?: number;
  /** Time to wait for a publish acknowledgement (default 5 s). */
  readonly publishTimeoutMs?: number;
  /**
   * Inbox prefix for publish acks; default: the connection's own `inboxPrefix` (`_INBOX_<service>` when
   * connected through `NatsServiceBus.connect`), which the service's NATS user may subscribe to.
   */
  readonly inboxPrefix?: string;
  readonly onError?: BusErrorReporter;
}

const defaultReporter: BusErrorReporter = (error, where) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'warn', msg: 'bus error', where, code: errorCode(error, 'unknown') })}\n`,
  );
};

/** A bus handle for one service over one NATS connection. */
export class NatsServiceBus implements ServiceBus {
  readonly service: ServiceName;
  /** @internal replies (publish acks, pulled messages) arrive under it */
  readonly inboxPrefix: string;
  private readonly publisher: PipelinedPublisher;
  private stopWatchingStatus: (() => void) | undefined;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private readonly subscriptions = new Set<NatsSubscription>();
  private readonly onError: BusErrorReporter;
  /** @internal */
  readonly metrics = new BusMetrics();
  private closed = false;

  private constructor(
    readonly connection: NatsConnection,
    private readonly options: NatsBusOptions,
    private readonly ownsConnection: boolean,
  ) {
    this.service = options.service;
    this.onError = options.onError ?? defaultReporter;
    this.inboxPrefix = options.inboxPrefix ?? inboxPrefixOf(connection);
    this.publisher = new PipelinedPublisher(connection, this.inboxPrefix, options.publishTimeoutMs ?? 5000);
    this.watchReconnects();
  }

  /** After a reconnect, pulls sent before may be gone with the old server session: subscriptions pull anew. */
  private watchReconnects(): void {
    const statuses = this.connection.status();
    // nats.js status iterators have `stop()`; without it the loop simply ends when the connection closes.
    this.stopWatchingStatus = () => (statuses as { stop?: () => void }).stop?.();
    void (async () => {
      for await (const status of statuses)
        if (status.type === 'reconnect') for (const sub of this.subscriptions) sub.reconnected();
    })().catch(() => undefined);
  }

  /** Connects with the service's own identity (TLS + user/pass or creds). */
  static async connect(settings: NatsConnectionSettings, options: NatsBusOptions): Promise<NatsServiceBus> {
    const nc = await connect(toNatsConnectOptions(settings, `sealpost-${options.service}`, options.service));
    return new NatsServiceBus(nc, options, true);
  }

  /** Wraps an existing connection; `close()` then leaves the connection open. */
  static fromConnection(connection: NatsConnection, options: NatsBusOptions): NatsServiceBus {
    return new NatsServiceBus(connection, options, false);
  }

  private manager(): Promise<JetStreamManager> {
    // checkAPI off: the service user may lack $JS.API.INFO; stream calls fail clearly on their own.
    this.jsmPromise ??= jetstreamManager(this.connection, { checkAPI: false, timeout: this.options.publishTimeoutMs });
    return this.jsmPromise;
  }

  publish(envelope: EventEnvelope): Promise<PublishAck> {
    try {
      this.check(envelope);
    } catch (error) {
      this.metrics.refused(envelope);
      return Promise.reject(error);
    }
    return this.send(envelope);
  }

  async publishMany(envelopes: readonly EventEnvelope[]): Promise<PublishAck[]> {
    // Every envelope is checked before the first is sent: a refused batch sends nothing.
    for (const envelope of envelopes) {
      try {
        this.check(envelope);
      } catch (error) {
        this.metrics.refused(envelope);
        throw error;
      }
    }
    // Pipelined: all are in flight at once. Wait for every one to settle, so nothing is still in flight
    // when the call rejects.
    const results = await Promise.allSettled(envelopes.map((envelope) => this.send(envelope)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<PublishAck>).value);
  }

  private check(envelope: EventEnvelope): void {
    if (this.closed) throw new BusClosedError();
    // Checked before sending: the server also refuses, but only asynchronously and less clearly.
    if (!mayPublish(this.service, envelope.subject)) throw new PublishNotAllowedError(this.service, envelope.subject);
    validateEnvelope(envelope, this.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  }

  /** Sends a checked envelope in its own PRODUCER span (not made active: nothing runs inside it). */
  private send(envelope: EventEnvelope): Promise<PublishAck> {
    const span = startProducerSpan('nats', envelope);
    const headers = envelopeToHeaders({ ...envelope, headers: span.headers });
    return this.publishRaw(envelope.subject, envelope.payload, headers).then(
      (ack) => {
        span.end();
        this.metrics.published(envelope.subject, envelope.type, ack.duplicate ? 'duplicate' : 'ok');
        return ack;
      },
      (error: unknown) => {
        span.end(error);
        this.metrics.published(envelope.subject, envelope.type, 'failed');
        throw error;
      },
    );
  }

  /** Publishes pre-built headers (including `Nats-Msg-Id`) + payload; resolves on the stream's ack. */
  private publishRaw(subject: string, payload: Uint8Array, headers: Readonly<Record<string, string>>) {
    const h = natsHeaders();
    // `append`, not `set`: the names are distinct already, and `set` first searches for and deletes each one
    // (it roughly doubled the cost of building the headers, a large share of the adapter's CPU per event).
    for (const name in headers) h.append(name, headers[name]!);
    return this.publisher.publish(subject, payload, h);
  }

  async ensureStreams(): Promise<void> {
    const jsm = await this.manager();
    for (const spec of streamsOwnedBy(this.service, this.options.streams)) await ensureStream(jsm, spec);
  }

  consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription> {
    return this.subscribe(options, { kind: 'single', handler });
  }

  consumeBatches(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    return this.subscribe(options, { kind: 'batch', handler });
  }

  private async subscribe(options: ConsumeOptions, handling: Handling): Promise<Subscription> {
    if (this.closed) throw new BusClosedError();
    const resolved = resolveConsumeOptions(this.service, options);
    const jsm = await this.manager();
    await ensureConsumer(jsm, resolved);
    const subscription = new NatsSubscription(this, resolved, handling, (sub) => this.subscriptions.delete(sub));
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  /** @internal */
  get settings(): NatsBusOptions & { onError: BusErrorReporter } {
    return { ...this.options, onError: this.onError };
  }

  /** @internal dead-letter publish: same path as events, own msg id. */
  async publishDeadLetter(subject: string, payload: Uint8Array, headers: Record<string, string>, msgId: string) {
    if (!mayPublish(this.service, subject)) throw new PublishNotAllowedError(this.service, subject);
    return this.publishRaw(subject, payload, { ...headers, [HEADERS.msgId]: msgId });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((sub) => sub.stop()));
    this.stopWatchingStatus?.();
    // Publishes already sent still get their acks (or time out) before the connection goes.
    await this.publisher.settled();
    this.publisher.close();
    // drain() flushes acks still in the outbound buffer before the connection goes away.
    if (this.ownsConnection) await this.connection.drain();
    else await this.connection.flush();
  }
}

/** The inbox prefix the connection was opened with (nats.js keeps its options on the connection). */
function inboxPrefixOf(connection: NatsConnection): string {
  const prefix = (connection as { options?: { inboxPrefix?: unknown } }).options?.inboxPrefix;
  return typeof prefix === 'string' && prefix !== '' ? prefix : '_INBOX';
}

function toStreamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: spec.replicas,
    max_age: nanos(spec.maxAgeMs),
    max_bytes: spec.maxBytes,
    duplicate_window: nanos(spec.duplicateWindowMs),
    discard: spec.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
    deny_delete: spec.denyDelete,
    deny_purge: spec.denyPurge,
  };
}

function differs(current: StreamConfig, wanted: Partial<StreamConfig>): boolean {
  return (Object.keys(wanted) as (keyof StreamConfig)[]).some(
    (key) => JSON.stringify(current[key]) !== JSON.stringify(wanted[key]),
  );
}

function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/** Creates the stream, or updates it when its settings drifted. Safe when several services race. */
async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
  const wanted = toStreamConfig(spec);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const info = await jsm.streams.info(spec.name);
      if (differs(info.config, wanted)) await jsm.streams.update(spec.name, wanted);
      return;
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
    }
    try {
      await jsm.streams.add(wanted);
      return;
    } catch (error) {
      // Another service created it between info and add: loop and compare again.
      if (!(error instanceof JetStreamApiError) || attempt === 2) throw error;
    }
  }
}

function consumerConfig(options: ResolvedConsumeOptions): Partial<ConsumerConfig> {
  const filters = options.filterSubjects;
  return {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs),
    // Unbounded on the server (it would drop a message silently at its bound); the client dead-letters
    // any delivery beyond maxDeliver, so each message ends acked or in the dead-letter stream.
    max_deliver: -1,
    max_ack_pending: options.maxAckPending,
    ...(filters.length === 1 ? { filter_subject: filters[0] } : { filter_subjects: [...filters] }),
  };
}

/** JetStream's "consumer already exists" (with a different config): servers ≥ 2.10 refuse create-as-update. */
const CONSUMER_ALREADY_EXISTS = 10148;

/** Creates the durable, or updates it when it exists with other settings (ack wait, filters, limits). */
async function ensureConsumer(jsm: JetStreamManager, options: ResolvedConsumeOptions): Promise<void> {
  const config = consumerConfig(options);
  try {
    // Servers before 2.10 treat this as create-or-update; later ones refuse a changed config.
    await jsm.consumers.add(options.stream, config);
  } catch (error) {
    if (isStreamNotFound(error)) throw new NoStreamError(`stream ${options.stream}`, { cause: error });
    if (!(error instanceof JetStreamApiError) || error.code !== CONSUMER_ALREADY_EXISTS) throw error;
    const { durable_name: _name, ack_policy: _ack, deliver_policy: _deliver, ...updatable } = config;
    await jsm.consumers.update(options.stream, options.durable, updatable);
  }
}

function headersToRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  // Iterating the entries directly: `get(key)` scans all keys per call, quadratic per message.
  for (const [key, values] of h) if (values[0] !== undefined) out[key] = values[0];
  return out;
}

type Handling =
  | { readonly kind: 'single'; readonly handler: EventHandler }
  | { readonly kind: 'batch'; readonly handler: BatchHandler };

/** Pause before a subscription whose pull stream broke (subscription refused, connection lost) starts over. */
const RESTART_PAUSE_MS = 1000;

/**
 * One running durable pull consumer. Its `PullStream` keeps the next batch on its way while the handler
 * works on the current one; messages are handled one at a time in order, or (batch mode) in batches of
 * whatever has arrived, up to `batch`.
 */
class NatsSubscription implements Subscription {
  private stopping = false;
  private stream: PullStream | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly settings: NatsBusOptions & { onError: BusErrorReporter };

  constructor(
    private readonly bus: NatsServiceBus,
    private readonly options: ResolvedConsumeOptions,
    private readonly handling: Handling,
    private readonly onStopped: (sub: NatsSubscription) => void,
  ) {
    this.settings = bus.settings;
  }

  get durable(): string {
    return this.options.durable;
  }

  start(): void {
    this.loop = this.run();
  }

  /** @internal the connection reconnected */
  reconnected(): void {
    this.stream?.reconnected();
  }

  private async run(): Promise<void> {
    const { onError } = this.settings;
    // A closed connection never reopens (nats.js reconnects without end otherwise): nothing left to consume.
    while (!this.stopping && !this.bus.connection.isClosed()) {
      let stream: PullStream | undefined;
      try {
        stream = new PullStream(this.bus.connection, {
          stream: this.options.stream,
          consumer: this.options.durable,
          prefetch: this.options.batch,
          inboxPrefix: this.bus.inboxPrefix,
          onError: (error) => onError(error, 'nats.pull'),
        });
        this.stream = stream;
        // Until the stream ends: after stop() that is once its close has drained what was already sent here,
        // so every delivery made to this subscription is handled by it (in order), none left to its ack wait.
        for (;;) {
          const messages = await stream.take(this.options.batch);
          if (messages.length === 0) break;
          if (this.handling.kind === 'single') for (const m of messages) await this.handle(stream, m);
          else await this.handleBatch(stream, messages, this.handling.handler);
        }
      } catch (error) {
        onError(error, 'nats.consume');
      }
      await stream?.close();
      if (!this.stopping)
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, RESTART_PAUSE_MS);
        });
    }
  }

  /** JetStream's `num_pending` as of this delivery (from its ack subject: no extra request). */
  private recordLag(message: PulledMessage): void {
    this.bus.metrics.lag(this.options.durable, this.options.stream, message.pending);
  }

  private async handleBatch(stream: PullStream, messages: PulledMessage[], handler: BatchHandler): Promise<void> {
    const { service, maxPayloadBytes, onError } = this.settings;
    this.recordLag(messages[messages.length - 1]!);
    try {
      await processBatch(
        messages.map((message) => ({
          raw: toRawDelivery(message),
          control: new NatsDeliveryControl(this.bus, stream, message),
        })),
        {
          service,
          system: 'nats',
          options: this.options,
          handler,
          onSettleError: (error) => onError(error, 'nats.settle'),
          metrics: this.bus.metrics,
          ...(maxPayloadBytes !== undefined ? { maxPayloadBytes } : {}),
        },
      );
    } catch (error) {
      onError(error, 'nats.settle');
    }
  }

  private async handle(stream: PullStream, message: PulledMessage): Promise<void> {
    const { service, maxPayloadBytes, onError } = this.settings;
    this.recordLag(message);
    try {
      await processDelivery(toRawDelivery(message), new NatsDeliveryControl(this.bus, stream, message), {
        service,
        system: 'nats',
        options: this.options,
        handler: (this.handling as { handler: EventHandler }).handler,
        metrics: this.bus.metrics,
        ...(maxPayloadBytes !== undefined ? { maxPayloadBytes } : {}),
      });
    } catch (error) {
      // Settling failed (e.g. dead-letter publish refused): leave it unacked; ack wait brings it back.
      onError(error, 'nats.settle');
    }
  }

  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.wake?.();
      // Now, not after the loop: pulling stops at once and the drain fence goes out with the next flush.
      void this.stream?.close();
    }
    await this.loop;
    this.onStopped(this);
  }
}

/**
 * Settles one pulled message. A class rather than an object of closures: one small object per message.
 * Acks are fire-and-forget and go out together with the stream's next take; a lost ack only causes a
 * redelivery, which consumers absorb with their idempotency marker.
 */
class NatsDeliveryControl implements DeliveryControl {
  constructor(
    private readonly bus: NatsServiceBus,
    private readonly stream: PullStream,
    private readonly message: PulledMessage,
  ) {}

  ack(): void {
    this.stream.ack(this.message);
  }

  retry(delayMs: number): void {
    this.stream.nak(this.message, delayMs);
  }

  async deadLetter(dl: DeadLetterMessage): Promise<void> {
    await this.bus.publishDeadLetter(dl.subject, dl.payload, dl.headers, dl.msgId);
    this.stream.term(this.message);
  }
}

function toRawDelivery(message: PulledMessage): RawDelivery {
  const { msg } = message;
  return {
    subject: msg.subject,
    payload: msg.data,
    headers: headersToRecord(msg.headers),
    stream: message.stream,
    streamSeq: message.streamSeq,
    deliveries: message.deliveries,
  };
}
