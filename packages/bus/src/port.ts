/**
 * The event-bus port. Two adapters implement it with the same semantics: JetStream (`NatsServiceBus`) and
 * the embedded SQLite bus (`EmbeddedBus.forService`). Services depend on these interfaces only.
 */
import type { PoisonMessageError } from './errors';
import type { Domain, ServiceName } from './topology';

/** One domain event as it travels on the bus. Payload bytes are protobuf and opaque to the bus. */
export interface EventEnvelope {
  /** Unique event id (uuid v7); sent as `Nats-Msg-Id`, so republishing the same event is deduplicated. */
  readonly id: string;
  /** Event type code, past tense: `consent.confirmed`. */
  readonly type: string;
  /** `sealpost.<domain>.<tenant>.<event>` or `sealpost.audit.<source>.<tenant>.<action>`: ids only. */
  readonly subject: string;
  readonly tenant: string;
  /** Id of the aggregate that changed (never personal data). */
  readonly aggregateId: string;
  /** Version of the aggregate after the change; consumers apply only newer versions. */
  readonly aggregateVersion: number;
  /** RFC 3339 UTC timestamp of the change. */
  readonly occurredAt: string;
  readonly payload: Uint8Array;
  /** Extra headers, notably W3C `traceparent`/`tracestate` captured when the event was created. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Returned once the event is durably stored (JetStream ack / SQLite commit). */
export interface PublishAck {
  readonly stream: string;
  readonly seq: number;
  /** True when an event with the same id was already stored within the duplicate window. */
  readonly duplicate: boolean;
}

export interface EventPublisher {
  /**
   * Publishes and resolves only when the event is durably stored. Throws `PublishNotAllowedError` (before
   * sending) for subjects outside the service's grant, `InvalidEnvelopeError`, `PayloadTooLargeError`,
   * `NoStreamError` or `PublishFailedError`.
   */
  publish(envelope: EventEnvelope): Promise<PublishAck>;
}

/** A publisher that can also store many events in one go (both adapters; `EventPublisher` stays minimal). */
export interface EventBatchPublisher extends EventPublisher {
  /**
   * Publishes several events and resolves with their acks in the same order once ALL are durably stored
   * (JetStream: pipelined, one ack per event; embedded: one SQLite transaction = one fsync). Every envelope
   * is checked before anything is sent, so a refused or invalid one sends none. If storing fails part-way
   * the call rejects (`PublishFailedError` / `NoStreamError` / `StreamFullError`) and some events may be
   * stored: republish the same envelopes, ids dedupe.
   */
  publishMany(envelopes: readonly EventEnvelope[]): Promise<PublishAck[]>;
}

/** An event handed to a consumer handler, with its delivery facts. */
export interface ReceivedEvent extends EventEnvelope {
  readonly stream: string;
  readonly streamSeq: number;
  /** 1 on first delivery. */
  readonly deliveries: number;
}

/**
 * Returns → ack. Throws `PoisonMessageError` → dead-letter now. Throws anything else → redelivery after
 * backoff, dead-letter once `maxDeliver` deliveries have failed.
 */
export type EventHandler = (event: ReceivedEvent) => Promise<void> | void;

/** What a batch handler reports for one event it could not apply. */
export type BatchFailure = 'retry' | PoisonMessageError;

/**
 * A batch handler's verdict: events not listed are acked. `'retry'` → redelivery after backoff (dead-letter
 * once `maxDeliver` deliveries failed), `PoisonMessageError` → dead-letter now. Keys are event ids; an entry
 * applies to every event of the batch with that id, and ids not in the batch are ignored.
 */
export interface BatchResult {
  readonly failures: ReadonlyMap<string, BatchFailure>;
}

/**
 * Handles a batch of events in stream order (1..`batch` events, never empty). Returning `void` acks all;
 * throwing counts as a failure of every event in the batch (a thrown `PoisonMessageError` dead-letters all).
 * Undecodable and over-delivered messages are dead-lettered before the handler and are not in the batch.
 */
export type BatchHandler = (events: readonly ReceivedEvent[]) => Promise<BatchResult | void> | BatchResult | void;

export interface ConsumeOptions {
  /** Durable consumer name (a subject token); its position survives restarts. */
  readonly durable: string;
  /** The domain whose stream is consumed; must be in the service's grant. */
  readonly domain: Domain;
  /** Subject filters inside the domain (default: the whole domain). More than one needs NATS ≥ 2.10. */
  readonly filterSubjects?: readonly string[];
  /** Deliveries a message gets before it is dead-lettered (default 5). */
  readonly maxDeliver?: number;
  /** Delay before redelivery after the n-th failed delivery (last value repeats; default [1s, 5s, 30s]). */
  readonly backoffMs?: readonly number[];
  /** A delivery not settled within this time is redelivered (default 30 s). */
  readonly ackWaitMs?: number;
  /**
   * Messages fetched at a time, and the most handed over at once by consumeBatches (default 32). JetStream
   * fetches the next batch while the handler works on one: at most one more batch waits in memory.
   */
  readonly batch?: number;
  /** Upper bound on delivered-but-unsettled messages (default 4 × batch). */
  readonly maxAckPending?: number;
}

/** A running durable consumer. */
export interface Subscription {
  readonly durable: string;
  /** Stops fetching, finishes messages already delivered to this process, then resolves. */
  stop(): Promise<void>;
}

export interface EventConsumer {
  /** Creates or updates the durable consumer and starts handling messages one at a time, in stream order. */
  consume(options: ConsumeOptions, handler: EventHandler): Promise<Subscription>;
  /**
   * Like `consume`, but hands over up to `options.batch` events at once: whatever has arrived while the
   * previous batch was handled (so batches grow under load and stay small, without waiting, when idle).
   * Acks are sent without waiting for the server (JetStream) or group-committed (embedded): after a crash
   * the last batch may be redelivered, never lost; consumers must be idempotent (they are: apply-once).
   */
  consumeBatches(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription>;
}

/** A bus handle bound to one service identity. */
export interface ServiceBus extends EventBatchPublisher, EventConsumer {
  readonly service: ServiceName;
  /** Creates or updates the streams this service owns (plus the dead-letter stream). Idempotent. */
  ensureStreams(): Promise<void>;
  /** Stops every subscription (draining in-flight messages) and releases the connection. */
  close(): Promise<void>;
}

/** Called for infrastructure trouble the caller cannot see (a failed ack, a broken fetch). */
export type BusErrorReporter = (error: unknown, where: string) => void;
