/**
 * The one consumer loop body both adapters run per delivery: bound check → decode → handler in a CONSUMER
 * span → settle (ack, retry with backoff, or dead-letter). Adapters supply only the settle operations.
 */
import type { Span } from '@opentelemetry/api';
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
import type { EventEnvelope, EventHandler } from './port';
import type { ServiceName } from './topology';
import { recordFailure, withConsumerSpan, type MessagingSystem } from './trace';

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
    await ctx.handler({ ...envelope, stream: raw.stream, streamSeq: raw.streamSeq, deliveries: raw.deliveries });
    return { kind: 'ack' };
  } catch (error) {
    recordFailure(span, error);
    return settleFailure(error, raw.deliveries, ctx.options);
  }
}
