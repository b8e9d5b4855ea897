import { context, SpanKind, trace } from '@opentelemetry/api';
import { extractTraceContext, injectTraceContext } from './propagation';
import { startTestTracing, type TestTracing } from './test-tracing';

describe('startTestTracing', () => {
  let tracing: TestTracing;
  beforeEach(() => {
    tracing = startTestTracing('consent');
  });
  afterEach(async () => {
    await tracing.shutdown();
  });

  it('records nested spans through the async context manager', async () => {
    const tracer = trace.getTracer('test');
    await tracer.startActiveSpan('outer', async (outer) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      tracer.startSpan('inner').end();
      outer.end();
    });
    const [inner, outer] = tracing.spans();
    expect(outer?.name).toBe('outer');
    expect(inner?.name).toBe('inner');
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(inner?.spanContext().traceId).toBe(outer?.spanContext().traceId);
    expect(outer?.resource.attributes['service.name']).toBe('sealpost-consent');
  });

  it('carries a trace across a header carrier: inject on one side, extract on the other', () => {
    const tracer = trace.getTracer('test');
    const headers = tracer.startActiveSpan('publish consent.confirmed', { kind: SpanKind.PRODUCER }, (producer) => {
      const carrier = injectTraceContext({ 'Nats-Msg-Id': 'evt-1' });
      producer.end();
      return carrier;
    });
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(headers['Nats-Msg-Id']).toBe('evt-1');

    // "Another process": nothing is active here, only the headers came across.
    expect(trace.getSpan(context.active())).toBeUndefined();
    const remote = extractTraceContext(JSON.parse(JSON.stringify(headers)) as Record<string, string>);
    context.with(remote, () => {
      tracer.startActiveSpan('consume consent.confirmed', { kind: SpanKind.CONSUMER }, (consumer) => {
        tracer.startSpan('apply').end();
        consumer.end();
      });
    });

    const byName = new Map(tracing.spans().map((span) => [span.name, span]));
    const producer = byName.get('publish consent.confirmed')!;
    const consumer = byName.get('consume consent.confirmed')!;
    const apply = byName.get('apply')!;
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(consumer.parentSpanContext?.isRemote).toBe(true);
    expect(apply.parentSpanContext?.spanId).toBe(consumer.spanContext().spanId);
  });

  it('starts a new trace when the carrier has no traceparent', () => {
    const tracer = trace.getTracer('test');
    context.with(extractTraceContext({}), () => tracer.startSpan('orphan').end());
    const [orphan] = tracing.spans();
    expect(orphan?.parentSpanContext).toBeUndefined();
  });

  it('reset forgets recorded spans', () => {
    trace.getTracer('test').startSpan('one').end();
    expect(tracing.spans()).toHaveLength(1);
    tracing.reset();
    expect(tracing.spans()).toHaveLength(0);
  });
});
