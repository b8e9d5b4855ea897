/**
 * W3C trace context across the bus via `@opentelemetry/api`: whatever global propagator is configured
 * (W3C trace context by default in the SDK) writes and reads message headers. Span attributes carry ids
 * and codes only — the subject is ids by construction; payloads are never attached.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import type { EventEnvelope } from './port';

const tracer = () => trace.getTracer('@sealpost/bus');

export type MessagingSystem = 'nats' | 'sealpost-embedded';

/** Writes the given context's trace headers into a copy of `headers`. */
export function injectTraceHeaders(headers: Readonly<Record<string, string>>, ctx: Context): Record<string, string> {
  const out: Record<string, string> = { ...headers };
  propagation.inject(ctx, out);
  return out;
}

/** Reads trace headers into a context (the root context when there are none). */
export function extractTraceContext(headers: Readonly<Record<string, string>>): Context {
  return propagation.extract(ROOT_CONTEXT, headers);
}

function errorCode(error: unknown): string {
  if (error !== null && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

/** Marks a span failed with the error's code only: error messages may be written by code we do not control. */
export function recordFailure(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(error) });
  span.setAttribute('error.type', errorCode(error));
}

/** A started PRODUCER span and the headers to send with the event (they carry the span as parent). */
export interface ProducerSpan {
  readonly headers: Record<string, string>;
  /** Ends the span, marked failed when `error` is given. */
  end(error?: unknown): void;
}

/**
 * Starts a PRODUCER span for one event without making it active: the publish hot path (and each event of
 * a `publishMany`) then needs no async context wrapper. The parent is the trace the event was created in
 * (its headers), or the active context.
 */
export function startProducerSpan(system: MessagingSystem, envelope: EventEnvelope): ProducerSpan {
  const parent = envelope.headers.traceparent !== undefined ? extractTraceContext(envelope.headers) : context.active();
  const span = tracer().startSpan(
    `send ${envelope.type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': system,
        'messaging.operation.type': 'send',
        'messaging.destination.name': envelope.subject,
        'messaging.message.id': envelope.id,
        'sealpost.event.type': envelope.type,
      },
    },
    parent,
  );
  return {
    headers: injectTraceHeaders(envelope.headers, trace.setSpan(parent, span)),
    end(error?: unknown) {
      if (error !== undefined) recordFailure(span, error);
      span.end();
    },
  };
}

/**
 * Runs `publish` in a PRODUCER span whose parent is the trace the event was created in (its headers), or
 * the active context. `publish` receives the headers to send, carrying this span as the parent.
 */
export async function withProducerSpan<T>(
  system: MessagingSystem,
  envelope: EventEnvelope,
  publish: (traceHeaders: Record<string, string>) => Promise<T>,
): Promise<T> {
  const parent = envelope.headers.traceparent !== undefined ? extractTraceContext(envelope.headers) : context.active();
  const attributes: Attributes = {
    'messaging.system': system,
    'messaging.operation.type': 'send',
    'messaging.destination.name': envelope.subject,
    'messaging.message.id': envelope.id,
    'sealpost.event.type': envelope.type,
  };
  return tracer().startActiveSpan(
    `send ${envelope.type}`,
    { kind: SpanKind.PRODUCER, attributes },
    parent,
    async (span) => {
      try {
        return await publish(injectTraceHeaders(envelope.headers, trace.setSpan(parent, span)));
      } catch (error) {
        recordFailure(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Runs a batch handler in one CONSUMER span. A batch has many parents, so the span starts a new trace and
 * links to each message's producer span (OpenTelemetry's convention for batch receive); at most
 * `MAX_BATCH_LINKS` links are kept.
 */
export async function withBatchConsumerSpan<T>(
  system: MessagingSystem,
  headers: readonly Readonly<Record<string, string>>[],
  attributes: Attributes,
  name: string,
  run: (span: Span) => Promise<T>,
): Promise<T> {
  const links: Link[] = [];
  for (const h of headers) {
    if (links.length >= MAX_BATCH_LINKS) break;
    if (h.traceparent === undefined) continue;
    const linked = trace.getSpanContext(extractTraceContext(h));
    if (linked !== undefined) links.push({ context: linked });
  }
  return tracer().startActiveSpan(
    name,
    {
      kind: SpanKind.CONSUMER,
      root: true,
      links,
      attributes: {
        'messaging.system': system,
        'messaging.operation.type': 'process',
        'messaging.batch.message_count': headers.length,
        ...attributes,
      },
    },
    async (span) => {
      try {
        return await run(span);
      } finally {
        span.end();
      }
    },
  );
}

/** Links kept on a batch CONSUMER span. */
export const MAX_BATCH_LINKS = 128;

/** Runs the handler in a CONSUMER span, child of the trace context found in the message headers. */
export async function withConsumerSpan<T>(
  system: MessagingSystem,
  headers: Readonly<Record<string, string>>,
  attributes: Attributes,
  name: string,
  run: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = extractTraceContext(headers);
  return tracer().startActiveSpan(
    name,
    {
      kind: SpanKind.CONSUMER,
      attributes: { 'messaging.system': system, 'messaging.operation.type': 'process', ...attributes },
    },
    parent,
    async (span) => {
      try {
        return await run(span);
      } finally {
        span.end();
      }
    },
  );
}
