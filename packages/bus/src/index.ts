/** @sealpost/bus — the event-bus port, its JetStream and embedded adapters, the outbox relay and apply-once. */
export * from './topology';
export * from './port';
export * from './errors';
export {
  HEADERS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  newEventId,
  createEnvelope,
  parseEventSubject,
  validateEnvelope,
  envelopeToHeaders,
  envelopeFromMessage,
  type NewEnvelope,
  type ParsedSubject,
} from './envelope';
export {
  streamSpec,
  streamsOwnedBy,
  DEFAULT_DUPLICATE_WINDOW_MS,
  type StreamKey,
  type StreamLimits,
  type StreamSettings,
  type StreamSpec,
} from './stream-config';
export {
  CONSUME_DEFAULTS,
  resolveConsumeOptions,
  matchesFilters,
  backoffFor,
  settleBeforeHandling,
  settleFailure,
  deadLetterMessage,
  type ResolvedConsumeOptions,
  type Settlement,
  type RawDelivery,
  type DeadLetterMessage,
} from './delivery-policy';
export {
  processDelivery,
  processBatch,
  type DeliveryControl,
  type DeliveryContext,
  type BatchDeliveryContext,
} from './process-delivery';
export {
  injectTraceHeaders,
  extractTraceContext,
  withProducerSpan,
  startProducerSpan,
  withConsumerSpan,
  withBatchConsumerSpan,
  type ProducerSpan,
} from './trace';
export {
  decideApply,
  nextMarker,
  mongoApplyOnce,
  mongoApplyOnceFilter,
  mongoApplyOnceUpdate,
  sqliteApplyOnce,
  DEFAULT_APPLIED_IDS,
  type ApplyDecision,
  type ApplyMarker,
  type SqliteApplyOnceTarget,
} from './apply-once';
export { NatsServiceBus, type NatsBusOptions } from './nats/nats-bus';
export {
  toNatsConnectOptions,
  inboxPrefixFor,
  type NatsConnectionSettings,
  type NatsTlsSettings,
} from './nats/connection-options';
export { EmbeddedBus, EmbeddedServiceBus, type EmbeddedBusOptions } from './embedded/embedded-bus';
export type { StoredMessage } from './embedded/sqlite-bus-store';
export { toOutboxEntry, fromOutboxEntry, type OutboxEntry } from './outbox/outbox-entry';
export type { OutboxSource, PendingDocument, PublishedEvent } from './outbox/outbox-source';
export {
  withPendingEvent,
  withPendingEvents,
  MongoOutboxSource,
  OutboxUpdateError,
  OUTBOX_FIELD,
  type OutboxDocument,
} from './outbox/mongo-outbox';
export { ensureSqliteOutbox, appendPendingEvent, SqliteOutboxSource } from './outbox/sqlite-outbox';
export { OutboxRelay, type OutboxRelayOptions, type RelayPassResult } from './outbox/outbox-relay';
export {
  renderNatsPermissions,
  renderNatsServerConfig,
  ownedStreams,
  consumedStreams,
  NATS_ADMIN_USER,
  NatsConfigError,
  type NatsPermissions,
  type NatsServerConfigInput,
} from './nats-permissions';
export { connectServiceBus, type ConnectedBus } from './connect-from-config';
