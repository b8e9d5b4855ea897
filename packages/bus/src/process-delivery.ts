/**
 * The one consumer loop body both adapters run per delivery: bound check → decode → handler in a CONSUMER
 * span → settle (ack, retry with backoff, or dead-letter). Adapters supply only the settle operations.
 */
import type { Span } from '@opentelemetry/api';
import type { BusMetrics } from './bus-metrics';
import {
  deadLetterMessage,
  settleBeforeHandling,
  settleFailure,
  type DeadLetterMessage,
  type RawDelivery,
  type ResolvedConsumeOptions,
  type Settlement,
} from './delivery-policy';
import { DEFAULT_MAX_PAYLOAD_BYTES, HEADERS, envelopeFromMessage } from './envelope';
import { BusError } from './errors';
import type { BatchHandler, EventEnvelope, EventHandler, ReceivedEvent } from './port';
import type { ServiceName } from './topology';
import { recordFailure, withBatchConsumerSpan, withConsumerSpan, type MessagingSystem } from './trace';

/** The adapter's settle operations for one delivery. */
export interface DeliveryControl {
  ack(): Promise<void> | void;
  /** Redeliver no earlier than `delayMs` from now. */
  retry(delayMs: number): Promise<void> | void;
  /** Stores `message` in the dead-letter stream durably, then terminates the original delivery. */
  deadLetter(message: DeadLetterMessage): Promise<void>;
}

export interface DeliveryContext {
  readonly service: ServiceName;
  readonly system: MessagingSystem;
  readonly options: ResolvedConsumeOptions;
  readonly handler: EventHandler;
  readonly maxPayloadBytes?: number;
  /** Counts each settled delivery (consumed / dead-lettered). */
  readonly metrics?: BusMetrics;
}

/** Handles one delivery end to end and returns what was done with it. Throws only if settling failed. */
export async function processDelivery(
  raw: RawDelivery,
  control: DeliveryControl,
  ctx: DeliveryContext,
): Promise<Settlement> {
  const attributes = {
    'messaging.destination.name': raw.subject,
    'messaging.consumer.group.name': ctx.options.durable,
    'messaging.message.id': raw.headers[HEADERS.msgId] ?? '',
    'messaging.message.delivery_count': raw.deliveries,
  };
  return withConsumerSpan(ctx.system, raw.headers, attributes, `process ${raw.subject}`, async (span) => {
    const settlement = await decide(raw, ctx, span);
    span.setAttribute('sealpost.settlement', settlement.kind);
    switch (settlement.kind) {
      case 'ack':
        await control.ack();
        break;
      case 'retry':
        await control.retry(settlement.delayMs);
        break;
      case 'dead-letter':
        span.setAttribute('sealpost.dead_letter.reason', settlement.reason);
        await control.deadLetter(deadLetterMessage(ctx.service, ctx.options.durable, raw, settlement.reason));
        break;
    }
    // Counted once settled: a failed settle leaves the delivery pending, and it is counted when it comes back.
    ctx.metrics?.settled(ctx.options.durable, raw.headers, settlement);
    return settlement;
  });
}

async function decide(raw: RawDelivery, ctx: DeliveryContext, span: Span): Promise<Settlement> {
  const bounded = settleBeforeHandling(raw.deliveries, ctx.options.maxDeliver);
  if (bounded !== null) return bounded;
  let envelope: EventEnvelope;
  try {
    envelope = envelopeFromMessage(
      raw.subject,
      raw.payload,
      raw.headers,
      ctx.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    );
  } catch (error) {
    recordFailure(span, error);
    const code = error instanceof BusError ? error.code : 'unknown';
    return { kind: 'dead-letter', reason: code === 'BUS_PAYLOAD_TOO_LARGE' ? 'too-large' : 'undecodable' };
  }
  span.setAttribute('sealpost.event.type', envelope.type);
  try {
    await ctx.handler(receivedEvent(envelope, raw));
    return { kind: 'ack' };
  } catch (error) {
    recordFailure(span, error);
    return settleFailure(error, raw.deliveries, ctx.options);
  }
}

export interface BatchDeliveryContext {
  readonly service: ServiceName;
  readonly system: MessagingSystem;
  readonly options: ResolvedConsumeOptions;
  readonly handler: BatchHandler;
  readonly maxPayloadBytes?: number;
  /** Called for each delivery whose settling failed; it stays unsettled and comes back after ack wait. */
  readonly onSettleError: (error: unknown) => void;
  /** Counts each settled delivery (consumed / dead-lettered). */
  readonly metrics?: BusMetrics;
}

/** Stands for a `'retry'` verdict in `settleFailure`: any error that is not poison retries. */
class RetryRequested extends Error {}

/**
 * Handles a batch of deliveries: bound check and decode per delivery (failures are dead-lettered and left
 * out), ONE handler call in one CONSUMER span linked to every producer, then each delivery settled as the
 * handler's `BatchResult` says. Returns the settlement per delivery, in input order.
 */
export async function processBatch(
  items: readonly { readonly raw: RawDelivery; readonly control: DeliveryControl }[],
  ctx: BatchDeliveryContext,
): Promise<Settlement[]> {
  const attributes = {
    'messaging.destination.name': ctx.options.stream,
    'messaging.consumer.group.name': ctx.options.durable,
  };
  const name = `process ${ctx.options.stream} batch`;
  return withBatchConsumerSpan(
    ctx.system,
    items.map((i) => i.raw.headers),
    attributes,
    name,
    async (span) => {
      const settlements: Settlement[] = new Array<Settlement>(items.length);
      const events: ReceivedEvent[] = [];
      const positions: number[] = [];
      items.forEach(({ raw }, index) => {
        const bounded = settleBeforeHandling(raw.deliveries, ctx.options.maxDeliver);
        if (bounded !== null) {
          settlements[index] = bounded;
          return;
        }
        const decoded = decode(raw, ctx.maxPayloadBytes);
        if ('settlement' in decoded) {
          settlements[index] = decoded.settlement;
          return;
        }
        events.push(receivedEvent(decoded.envelope, raw));
        positions.push(index);
      });
      if (events.length > 0) {
        try {
          const failures = (await ctx.handler(events))?.failures;
          events.forEach((event, k) => {
            const failure = failures?.get(event.id);
            settlements[positions[k]!] =
              failure === undefined
                ? { kind: 'ack' }
                : settleFailure(failure === 'retry' ? new RetryRequested() : failure, event.deliveries, ctx.options);
          });
        } catch (error) {
          recordFailure(span, error);
          events.forEach(
            (event, k) => (settlements[positions[k]!] = settleFailure(error, event.deliveries, ctx.options)),
          );
        }
      }
      const counts = { ack: 0, retry: 0, 'dead-letter': 0 };
      const deadLetters: Promise<void>[] = [];
      const { metrics } = ctx;
      const durable = ctx.options.durable;
      items.forEach(({ raw, control }, index) => {
        const settlement = settlements[index]!;
        counts[settlement.kind]++;
        try {
          // Acks and retries are not awaited one by one: the adapter batches them (see consumeBatches), so
          // they are counted when issued; dead-letters once stored.
          if (settlement.kind === 'ack') {
            control.ack()?.catch(ctx.onSettleError);
            metrics?.settled(durable, raw.headers, settlement);
          } else if (settlement.kind === 'retry') {
            control.retry(settlement.delayMs)?.catch(ctx.onSettleError);
            metrics?.settled(durable, raw.headers, settlement);
          } else
            deadLetters.push(
              control
                .deadLetter(deadLetterMessage(ctx.service, durable, raw, settlement.reason))
                .then(() => metrics?.settled(durable, raw.headers, settlement), ctx.onSettleError),
            );
        } catch (error) {
          ctx.onSettleError(error);
        }
      });
      await Promise.all(deadLetters);
      span.setAttributes({
        'sealpost.batch.acked': counts.ack,
        'sealpost.batch.retried': counts.retry,
        'sealpost.batch.dead_lettered': counts['dead-letter'],
      });
      return settlements;
    },
  );
}

/**
 * The envelope plus its delivery facts, property by property: `{ ...envelope, stream, … }` took V8's slow
 * path (several µs per event on Node 20, most of a batch's bus overhead), a literal takes nanoseconds.
 */
function receivedEvent(envelope: EventEnvelope, raw: RawDelivery): ReceivedEvent {
  return {
    id: envelope.id,
    type: envelope.type,
    subject: envelope.subject,
    tenant: envelope.tenant,
    aggregateId: envelope.aggregateId,
    aggregateVersion: envelope.aggregateVersion,
    occurredAt: envelope.occurredAt,
    payload: envelope.payload,
    headers: envelope.headers,
    stream: raw.stream,
    streamSeq: raw.streamSeq,
    deliveries: raw.deliveries,
  };
}

function decode(
  raw: RawDelivery,
  maxPayloadBytes: number | undefined,
): { envelope: EventEnvelope } | { settlement: Settlement } {
  try {
    return {
      envelope: envelopeFromMessage(
        raw.subject,
        raw.payload,
        raw.headers,
        maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      ),
    };
  } catch (error) {
    const code = error instanceof BusError ? error.code : 'unknown';
    return {
      settlement: { kind: 'dead-letter', reason: code === 'BUS_PAYLOAD_TOO_LARGE' ? 'too-large' : 'undecodable' },
    };
  }
}
