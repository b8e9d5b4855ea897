/**
 * Envelope codec: building, validating and (de)serialising events to/from message headers + payload.
 * Pure logic (no I/O); both adapters and the outbox use it so the wire format cannot drift.
 */
import { randomFillSync } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import { InvalidEnvelopeError, PayloadTooLargeError } from './errors';
import type { EventEnvelope } from './port';
import { DOMAINS, SUBJECT_ROOT, TREE_HEAD_EVENT, type Domain } from './topology';

/** Header names on the wire. `Nats-Msg-Id` is what JetStream deduplicates on. */
export const HEADERS = {
  msgId: 'Nats-Msg-Id',
  type: 'Sealpost-Event-Type',
  tenant: 'Sealpost-Tenant',
  aggregateId: 'Sealpost-Aggregate-Id',
  aggregateVersion: 'Sealpost-Aggregate-Version',
  occurredAt: 'Sealpost-Occurred-At',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  deadLetterSubject: 'Sealpost-DL-Subject',
  deadLetterStream: 'Sealpost-DL-Stream',
  deadLetterSeq: 'Sealpost-DL-Seq',
  deadLetterReason: 'Sealpost-DL-Reason',
  deadLetterDeliveries: 'Sealpost-DL-Deliveries',
  deadLetterConsumer: 'Sealpost-DL-Consumer',
  deadLetterEventId: 'Sealpost-DL-Event-Id',
} as const;

/** NATS' default max_payload is 1 MiB; events are ids + small protobufs, so this is generous. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

const EVENT_ID = /^[A-Za-z0-9-]{8,64}$/;
const TYPE = /^[a-z][a-z0-9_.-]{0,127}$/;
const AGGREGATE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const TENANT = /^[A-Za-z0-9_-]{1,64}$/;
const HEADER_NAME = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
// Printable ASCII only: no CR/LF header injection, nothing binary.
const HEADER_VALUE = /^[\x20-\x7e]{0,1024}$/;
const RESERVED_HEADER = /^(nats-|sealpost-)/i;
const MAX_EXTRA_HEADERS = 16;

const randomPool = Buffer.alloc(16 * 256);
let randomOffset = randomPool.length;

/** A time-ordered UUID (RFC 9562 v7): ids sort by creation time, which keeps indexes and logs tidy. */
export function newEventId(now: number = Date.now()): string {
  // Random bytes come from a pool refilled 256 ids at a time: one CSPRNG call per id dominated publishing.
  if (randomOffset + 16 > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const bytes = Buffer.allocUnsafe(16);
  randomPool.copy(bytes, 0, randomOffset, randomOffset + 16);
  randomOffset += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface NewEnvelope {
  readonly type: string;
  readonly subject: string;
  readonly tenant: string;
  readonly aggregateId: string;
  readonly aggregateVersion: number;
  readonly payload: Uint8Array;
  readonly id?: string;
  readonly occurredAt?: Date | string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Builds and validates an envelope, capturing the active trace context (via the global propagator) so
 * an event written to an outbox now and published later still joins the trace that caused it.
 */
export function createEnvelope(input: NewEnvelope): EventEnvelope {
  const headers: Record<string, string> = { ...input.headers };
  if (headers[HEADERS.traceparent] === undefined) propagation.inject(context.active(), headers);
  const occurredAt =
    input.occurredAt === undefined
      ? new Date().toISOString()
      : typeof input.occurredAt === 'string'
        ? input.occurredAt
        : input.occurredAt.toISOString();
  const envelope: EventEnvelope = {
    id: input.id ?? newEventId(),
    type: input.type,
    subject: input.subject,
    tenant: input.tenant,
    aggregateId: input.aggregateId,
    aggregateVersion: input.aggregateVersion,
    occurredAt,
    payload: input.payload,
    headers,
  };
  validateEnvelope(envelope);
  return envelope;
}

export interface ParsedSubject {
  /** An event domain, or `treehead` for `sealpost.treehead.<logId>.signed` (tenant = the log id). */
  readonly domain: Domain | 'treehead';
  readonly tenant: string;
  readonly event: string;
  /** For audit subjects: the source token (`vault`, `consent`, …). */
  readonly source?: string;
}

// Events of one kind and tenant share a subject, and each event is validated up to three times (built, stored in an
// outbox, published): a subject is parsed once, not each time (bounded: cleared when full).
const parsedSubjects = new Map<string, ParsedSubject | null>();
const PARSED_SUBJECTS_MAX = 4096;

/** Parses an event subject; null when it is not one. The result is frozen (it may be shared). */
export function parseEventSubject(subject: string): ParsedSubject | null {
  let parsed = parsedSubjects.get(subject);
  if (parsed === undefined) {
    parsed = parseSubject(subject);
    if (parsedSubjects.size >= PARSED_SUBJECTS_MAX) parsedSubjects.clear();
    parsedSubjects.set(subject, parsed && Object.freeze(parsed));
  }
  return parsed;
}

function parseSubject(subject: string): ParsedSubject | null {
  const parts = subject.split('.');
  if (parts[0] !== SUBJECT_ROOT) return null;
  if (parts[1] === 'treehead') {
    // Signed tree heads: no tenant, the log id takes its place; `signed` is the only event.
    const [, , logId, event] = parts;
    if (parts.length !== 4 || logId === undefined || !TENANT.test(logId) || event !== TREE_HEAD_EVENT) return null;
    return { domain: 'treehead', tenant: logId, event };
  }
  const domain = parts[1] as Domain | undefined;
  if (domain === undefined || !(DOMAINS as readonly string[]).includes(domain)) return null;
  const tokens = domain === 'audit' ? parts.slice(2) : [undefined, ...parts.slice(2)];
  if (tokens.length !== 3) return null;
  const [source, tenant, event] = tokens;
  if (tenant === undefined || event === undefined || !TENANT.test(tenant) || !TENANT.test(event)) return null;
  if (domain === 'audit' && (source === undefined || !TENANT.test(source))) return null;
  return source === undefined ? { domain, tenant, event } : { domain, tenant, event, source };
}

/** Throws `InvalidEnvelopeError` (naming the field, never the value) or `PayloadTooLargeError`. */
export function validateEnvelope(envelope: EventEnvelope, maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES): void {
  if (typeof envelope.id !== 'string' || !EVENT_ID.test(envelope.id))
    throw new InvalidEnvelopeError('invalid event id');
  if (typeof envelope.type !== 'string' || !TYPE.test(envelope.type))
    throw new InvalidEnvelopeError('invalid event type');
  if (typeof envelope.tenant !== 'string' || !TENANT.test(envelope.tenant))
    throw new InvalidEnvelopeError('invalid tenant');
  if (typeof envelope.aggregateId !== 'string' || !AGGREGATE_ID.test(envelope.aggregateId))
    throw new InvalidEnvelopeError('invalid aggregate id');
  if (!Number.isSafeInteger(envelope.aggregateVersion) || envelope.aggregateVersion < 1)
    throw new InvalidEnvelopeError('aggregate version must be a positive integer');
  if (typeof envelope.occurredAt !== 'string' || Number.isNaN(Date.parse(envelope.occurredAt)))
    throw new InvalidEnvelopeError('invalid occurredAt');
  const parsed = typeof envelope.subject === 'string' ? parseEventSubject(envelope.subject) : null;
  if (parsed === null) throw new InvalidEnvelopeError('subject is not an event subject');
  if (parsed.tenant !== envelope.tenant) throw new InvalidEnvelopeError('subject tenant differs from envelope tenant');
  if (!(envelope.payload instanceof Uint8Array)) throw new InvalidEnvelopeError('payload must be bytes');
  if (envelope.payload.byteLength > maxPayloadBytes)
    throw new PayloadTooLargeError(envelope.payload.byteLength, maxPayloadBytes);
  const names = Object.keys(envelope.headers ?? {});
  if (names.length > MAX_EXTRA_HEADERS) throw new InvalidEnvelopeError('too many headers');
  for (const name of names) {
    if (!HEADER_NAME.test(name) || RESERVED_HEADER.test(name)) throw new InvalidEnvelopeError('invalid header name');
    const value = envelope.headers[name];
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) throw new InvalidEnvelopeError('invalid header value');
  }
}

/** The full header set for the wire: envelope fields + extra headers. */
export function envelopeToHeaders(envelope: EventEnvelope): Record<string, string> {
  // Copied and assigned one by one: `{ ...headers, [name]: value, … }` takes V8's slow path once `headers` is
  // not empty (a traceparent), several µs per published event on Node 20.
  const out: Record<string, string> = {};
  for (const name in envelope.headers) out[name] = envelope.headers[name]!;
  out[HEADERS.msgId] = envelope.id;
  out[HEADERS.type] = envelope.type;
  out[HEADERS.tenant] = envelope.tenant;
  out[HEADERS.aggregateId] = envelope.aggregateId;
  out[HEADERS.aggregateVersion] = String(envelope.aggregateVersion);
  out[HEADERS.occurredAt] = envelope.occurredAt;
  return out;
}

function requiredHeader(headers: Readonly<Record<string, string>>, name: string): string {
  const value = headers[name];
  if (value === undefined) throw new InvalidEnvelopeError(`missing header ${name}`);
  return value;
}

/**
 * Rebuilds an envelope from a received message. Throws `InvalidEnvelopeError` / `PayloadTooLargeError`,
 * which consumers treat as poison (dead-letter at once).
 */
export function envelopeFromMessage(
  subject: string,
  payload: Uint8Array,
  headers: Readonly<Record<string, string>>,
  maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES,
): EventEnvelope {
  const version = requiredHeader(headers, HEADERS.aggregateVersion);
  const extra: Record<string, string> = {};
  let kept = 0;
  // Unknown or odd headers (added by a proxy, a newer publisher) are dropped rather than poisoning the event.
  for (const name in headers) {
    if (kept >= MAX_EXTRA_HEADERS) break;
    const value = headers[name]!;
    if (HEADER_NAME.test(name) && !RESERVED_HEADER.test(name) && HEADER_VALUE.test(value)) {
      extra[name] = value;
      kept++;
    }
  }
  const envelope: EventEnvelope = {
    id: requiredHeader(headers, HEADERS.msgId),
    type: requiredHeader(headers, HEADERS.type),
    subject,
    tenant: requiredHeader(headers, HEADERS.tenant),
    aggregateId: requiredHeader(headers, HEADERS.aggregateId),
    aggregateVersion: /^[0-9]{1,16}$/.test(version) ? Number(version) : Number.NaN,
    occurredAt: requiredHeader(headers, HEADERS.occurredAt),
    payload,
    headers: extra,
  };
  validateEnvelope(envelope, maxPayloadBytes);
  return envelope;
}
