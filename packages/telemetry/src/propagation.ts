import { context, propagation, type Context } from '@opentelemetry/api';

/** String headers (gRPC metadata, HTTP or NATS headers, flattened). */
export type HeaderCarrier = Record<string, string>;

/** Writes the active (or given) context's `traceparent`/`tracestate` into a header carrier. */
export function injectTraceContext(carrier: HeaderCarrier = {}, ctx: Context = context.active()): HeaderCarrier {
  propagation.inject(ctx, carrier);
  return carrier;
}

/** Reads `traceparent`/`tracestate` from a header carrier into a context to run the receiving side in. */
export function extractTraceContext(carrier: Readonly<HeaderCarrier>, ctx: Context = context.active()): Context {
  return propagation.extract(ctx, carrier);
}
