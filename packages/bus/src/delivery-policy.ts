/**
 * What happens to a delivery, as pure decisions shared by both adapters: option defaults, ack / retry /
 * dead-letter, and the shape of a dead-letter message.
 */
import { HEADERS } from './envelope';
import { ConsumeNotAllowedError, InvalidBusOptionsError, PoisonMessageError } from './errors';
import type { ConsumeOptions } from './port';
import {
  checkToken,
  deadLetterSubject,
  domainSubjects,
  mayConsume,
  streamNameOf,
  subjectMatches,
  type Domain,
  type ServiceName,
} from './topology';

export interface ResolvedConsumeOptions {
  readonly durable: string;
  readonly domain: Domain;
  readonly stream: string;
  readonly filterSubjects: readonly string[];
  readonly maxDeliver: number;
  readonly backoffMs: readonly number[];
  readonly ackWaitMs: number;
  readonly batch: number;
  readonly maxAckPending: number;
}

export const CONSUME_DEFAULTS = {
  maxDeliver: 5,
  backoffMs: [1000, 5000, 30000],
  ackWaitMs: 30000,
  batch: 32,
} as const;

/** Applies defaults and checks the grant. Throws `ConsumeNotAllowedError` / `InvalidBusOptionsError`. */
export function resolveConsumeOptions(service: ServiceName, options: ConsumeOptions): ResolvedConsumeOptions {
  const durable = checkToken(options.durable, 'durable');
  if (!mayConsume(service, options.domain)) throw new ConsumeNotAllowedError(service, `domain ${options.domain}`);
  const root = domainSubjects(options.domain);
  const filterSubjects = options.filterSubjects?.length ? [...options.filterSubjects] : [root];
  for (const filter of filterSubjects) {
    // A filter must stay inside the domain: the stream would accept nothing else anyway, and this fails early.
    const inside = filter === root || (filter.startsWith(root.slice(0, -1)) && !filter.includes(' '));
    if (!inside) throw new InvalidBusOptionsError(`filter ${filter} is outside domain ${options.domain}`);
  }
  const maxDeliver = options.maxDeliver ?? CONSUME_DEFAULTS.maxDeliver;
  const backoffMs = [...(options.backoffMs ?? CONSUME_DEFAULTS.backoffMs)];
  const ackWaitMs = options.ackWaitMs ?? CONSUME_DEFAULTS.ackWaitMs;
  const batch = options.batch ?? CONSUME_DEFAULTS.batch;
  const maxAckPending = options.maxAckPending ?? batch * 4;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) throw new InvalidBusOptionsError('maxDeliver must be ≥ 1');
  if (backoffMs.some((ms) => !Number.isInteger(ms) || ms < 0))
    throw new InvalidBusOptionsError('backoffMs entries must be integers ≥ 0');
  if (!Number.isInteger(ackWaitMs) || ackWaitMs < 100) throw new InvalidBusOptionsError('ackWaitMs must be ≥ 100');
  if (!Number.isInteger(batch) || batch < 1 || batch > 1000) throw new InvalidBusOptionsError('batch must be 1..1000');
  if (!Number.isInteger(maxAckPending) || maxAckPending < batch)
    throw new InvalidBusOptionsError('maxAckPending must be ≥ batch');
  return {
    durable,
    domain: options.domain,
    stream: streamNameOf(options.domain),
    filterSubjects,
    maxDeliver,
    backoffMs,
    ackWaitMs,
    batch,
    maxAckPending,
  };
}

/** True when a subject passes any of the consumer's filters. */
export function matchesFilters(filters: readonly string[], subject: string): boolean {
  return filters.some((filter) => subjectMatches(filter, subject));
}

/** Delay before redelivery after the n-th failed delivery (1-based); the last value repeats. */
export function backoffFor(deliveries: number, backoffMs: readonly number[]): number {
  if (backoffMs.length === 0) return 0;
  return backoffMs[Math.min(Math.max(deliveries, 1), backoffMs.length) - 1] ?? 0;
}

export type Settlement =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly delayMs: number }
  | { readonly kind: 'dead-letter'; readonly reason: string };

/**
 * Before running the handler: a message delivered more than `maxDeliver` times (its consumer kept dying
 * or timing out) is dead-lettered without another attempt. The server-side bound is left unlimited
 * because JetStream drops a message silently at its own bound; here every message ends acked or dead-lettered.
 */
export function settleBeforeHandling(deliveries: number, maxDeliver: number): Settlement | null {
  return deliveries > maxDeliver ? { kind: 'dead-letter', reason: 'max-deliveries' } : null;
}

/** After the handler threw: poison → dead-letter now; otherwise retry with backoff until the bound. */
export function settleFailure(error: unknown, deliveries: number, options: ResolvedConsumeOptions): Settlement {
  if (error instanceof PoisonMessageError)
    return { kind: 'dead-letter', reason: `poison:${reasonToken(error.reason)}` };
  if (deliveries >= options.maxDeliver) return { kind: 'dead-letter', reason: 'max-deliveries' };
  return { kind: 'retry', delayMs: backoffFor(deliveries, options.backoffMs) };
}

/** Reasons go into a header: keep them to a short code so no free text (or personal data) leaks into it. */
export function reasonToken(reason: string): string {
  const cleaned = reason.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'unspecified';
}

export interface RawDelivery {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly stream: string;
  readonly streamSeq: number;
  readonly deliveries: number;
}

export interface DeadLetterMessage {
  readonly subject: string;
  /** Deterministic, so a crash between dead-lettering and settling the original cannot file it twice. */
  readonly msgId: string;
  readonly payload: Uint8Array;
  readonly headers: Record<string, string>;
}

/** The dead-letter copy: original payload and headers, plus where it came from and why it failed. */
export function deadLetterMessage(
  service: ServiceName,
  durable: string,
  raw: RawDelivery,
  reason: string,
): DeadLetterMessage {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw.headers)) {
    // The original Nats-Msg-Id must not be reused: the dead-letter stream dedupes on its own id.
    if (name !== HEADERS.msgId) headers[name] = value;
  }
  const eventId = raw.headers[HEADERS.msgId];
  if (eventId !== undefined) headers[HEADERS.deadLetterEventId] = eventId;
  headers[HEADERS.deadLetterSubject] = raw.subject;
  headers[HEADERS.deadLetterStream] = raw.stream;
  headers[HEADERS.deadLetterSeq] = String(raw.streamSeq);
  headers[HEADERS.deadLetterReason] = reasonToken(reason);
  headers[HEADERS.deadLetterDeliveries] = String(raw.deliveries);
  headers[HEADERS.deadLetterConsumer] = durable;
  return {
    subject: deadLetterSubject(service, durable),
    msgId: `dl-${durable}-${raw.stream}-${raw.streamSeq}`,
    payload: raw.payload,
    headers,
  };
}
