/**
 * A pending event as stored inside an aggregate's document/row until the relay has published it.
 * JSON-safe (payload base64) so the same shape fits a MongoDB array element and a SQLite JSON column.
 */
import { validateEnvelope } from '../envelope';
import type { EventEnvelope } from '../port';

export interface OutboxEntry {
  readonly id: string;
  readonly type: string;
  readonly subject: string;
  readonly tenant: string;
  readonly aggregateId: string;
  readonly aggregateVersion: number;
  readonly occurredAt: string;
  /** Protobuf bytes, base64. */
  readonly payload: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Validates the envelope and converts it for storage (throws `InvalidEnvelopeError` before anything is written). */
export function toOutboxEntry(envelope: EventEnvelope): OutboxEntry {
  validateEnvelope(envelope);
  return {
    id: envelope.id,
    type: envelope.type,
    subject: envelope.subject,
    tenant: envelope.tenant,
    aggregateId: envelope.aggregateId,
    aggregateVersion: envelope.aggregateVersion,
    occurredAt: envelope.occurredAt,
    payload: Buffer.from(envelope.payload).toString('base64'),
    headers: { ...envelope.headers },
  };
}

export function fromOutboxEntry(entry: OutboxEntry): EventEnvelope {
  return {
    id: entry.id,
    type: entry.type,
    subject: entry.subject,
    tenant: entry.tenant,
    aggregateId: entry.aggregateId,
    aggregateVersion: entry.aggregateVersion,
    occurredAt: entry.occurredAt,
    payload: new Uint8Array(Buffer.from(entry.payload, 'base64')),
    headers: { ...entry.headers },
  };
}
