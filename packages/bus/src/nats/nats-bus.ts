/**
 * JetStream adapter of the bus port: per-domain file streams, `Nats-Msg-Id` dedupe, durable pull consumers
 * with explicit acks, client-bounded redelivery with nak backoff, and a dead-letter stream.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { BusMetrics } from '../bus-metrics';
import { resolveConsumeOptions, type RawDelivery, type ResolvedConsumeOptions } from '../delivery-policy';
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
import { toNatsConnectOptions, type NatsConnectionSettings } from './connection-options';

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
  const code = error instanceof Error ? ((error as { code?: unknown }).code ?? error.name) : 'unknown';
  process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'bus error', where, code: String(code) })}\n`);
};

/** A bus handle for one service over one NATS connection. */
export class NatsServiceBus implements ServiceBus {
  readonly service: ServiceName;
  private readonly js: JetStreamClient;
  private readonly publisher: PipelinedPublisher;
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
    this.js = jetstream(connection, { timeout: options.publishTimeoutMs ?? 5000 });
    this.publisher = new PipelinedPublisher(
      connection,
      options.inboxPrefix ?? inboxPrefixOf(connection),
      options.publishTimeoutMs ?? 5000,
    );
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
    for (const name in headers) h.set(name, headers[name]!);
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

  /** @internal used by subscriptions */
  get client(): JetStreamClient {
    return this.js;
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

/**
 * One running durable pull consumer: batched pulls; messages handled one at a time in order, or (batch
 * mode) in batches of whatever has arrived while the previous batch was handled.
 */
class NatsSubscription implements Subscription {
  private stopping = false;
  private messages: ConsumerMessages | undefined;
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

  private async run(): Promise<void> {
    const { onError } = this.settings;
    while (!this.stopping) {
      try {
        const consumer = await this.bus.client.consumers.get(this.options.stream, this.options.durable);
        if (this.stopping) break;
        this.messages = await consumer.consume({ max_messages: this.options.batch });
        if (this.stopping) await this.messages.close();
        // After close() the iterator still yields what was already pulled: those are handled (drained).
        if (this.handling.kind === 'single') for await (const msg of this.messages) await this.handle(msg);
        else await this.runBatches(this.messages, this.handling.handler);
      } catch (error) {
        onError(error, 'nats.consume');
      }
      if (!this.stopping)
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000);
        });
    }
  }

  /**
   * A pump moves pulled messages into a queue while the previous batch is handled; each batch takes up to
   * `batch` queued messages. The queue is bounded by the consumer's max ack pending (unacked messages).
   */
  private async runBatches(messages: ConsumerMessages, handler: BatchHandler): Promise<void> {
    const queue: JsMsg[] = [];
    let pumping = true;
    let notify: (() => void) | undefined;
    const pump = (async () => {
      try {
        for await (const msg of messages) {
          queue.push(msg);
          notify?.();
        }
      } finally {
        pumping = false;
        notify?.();
      }
    })();
    // Rejections surface through `await pump` below; this only keeps them from being reported as unhandled.
    pump.catch(() => undefined);
    for (;;) {
      if (queue.length === 0) {
        if (!pumping) break;
        await new Promise<void>((resolve) => (notify = resolve));
        notify = undefined;
        // One turn of the event loop lets the pump move the rest of an already received pull into the queue.
        await yieldToEventLoop();
        continue;
      }
      await this.handleBatch(queue.splice(0, this.options.batch), handler);
    }
    await pump;
  }

  /** JetStream's `num_pending` as of this delivery (from its reply subject: no extra request). */
  private recordLag(msg: JsMsg): void {
    this.bus.metrics.lag(this.options.durable, this.options.stream, msg.info.pending);
  }

  private control(msg: JsMsg): DeliveryControl {
    return {
      // Fire-and-forget: acks are coalesced in the connection's outbound buffer; a lost ack only causes a
      // redelivery, which consumers absorb with their idempotency marker.
      ack: () => msg.ack(),
      retry: (delayMs) => msg.nak(delayMs),
      deadLetter: async (dl) => {
        await this.bus.publishDeadLetter(dl.subject, dl.payload, dl.headers, dl.msgId);
        msg.term();
      },
    };
  }

  private async handleBatch(msgs: JsMsg[], handler: BatchHandler): Promise<void> {
    const { service, maxPayloadBytes, onError } = this.settings;
    this.recordLag(msgs[msgs.length - 1]!);
    try {
      await processBatch(
        msgs.map((msg) => ({ raw: toRawDelivery(msg), control: this.control(msg) })),
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

  private async handle(msg: JsMsg): Promise<void> {
    const { service, maxPayloadBytes, onError } = this.settings;
    this.recordLag(msg);
    try {
      await processDelivery(toRawDelivery(msg), this.control(msg), {
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
      await this.messages?.close();
    }
    await this.loop;
    this.onStopped(this);
  }
}

function toRawDelivery(msg: JsMsg): RawDelivery {
  return {
    subject: msg.subject,
    payload: msg.data,
    headers: headersToRecord(msg.headers),
    stream: msg.info.stream,
    streamSeq: msg.seq,
    deliveries: msg.info.deliveryCount,
  };
}
