import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type CollectionResult,
  type DataPoint,
} from '@opentelemetry/sdk-metrics';
import { METRICS, METRIC_NAMES, sanitizeLabels, sealpostMetrics } from './metrics';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

function points(result: CollectionResult, name: string): DataPoint<unknown>[] {
  const found = result.resourceMetrics.scopeMetrics
    .flatMap((scope) => scope.metrics)
    .find((m) => m.descriptor.name === name);
  return (found?.dataPoints ?? []) as DataPoint<unknown>[];
}

describe('METRIC_NAMES', () => {
  it('lists every metric once, Prometheus-style, with counters ending in _total', () => {
    expect(new Set(METRIC_NAMES).size).toBe(METRIC_NAMES.length);
    expect(METRIC_NAMES).toEqual(Object.keys(METRICS));
    expect(METRIC_NAMES).toEqual(
      expect.arrayContaining([
        'sealpost_bus_published_total',
        'sealpost_bus_consumer_lag',
        'sealpost_grpc_server_requests_total',
      ]),
    );
    for (const name of METRIC_NAMES) {
      expect(name).toMatch(/^sealpost_[a-z0-9_]+[a-z0-9]$/);
      expect([name, METRICS[name].kind === 'counter']).toEqual([name, name.endsWith('_total')]);
      for (const label of METRICS[name].labels) expect(label).toMatch(/^[a-z][a-z_]*$/);
    }
  });
});

describe('sanitizeLabels', () => {
  it('keeps declared keys with code-like values and drops the rest', () => {
    expect(sanitizeLabels(['tenant', 'outcome'], { tenant: 'acme-eu', outcome: 'ok', email: 'x@y.z' })).toEqual({
      tenant: 'acme-eu',
      outcome: 'ok',
    });
  });

  it('accepts a gRPC method path (leading slash) but not a path holding an address', () => {
    expect(sanitizeLabels(['method'], { method: '/sealpost.vault.v1.ContactVault/GetContact' })).toEqual({
      method: '/sealpost.vault.v1.ContactVault/GetContact',
    });
    expect(sanitizeLabels(['method'], { method: '/x/jane@example.com' })).toEqual({ method: 'invalid' });
  });

  it.each(['jane@example.com', '+447700900123', 'Jane Doe', 'x'.repeat(65), '', '-leading'])(
    'turns %j into "invalid"',
    (value) => {
      expect(sanitizeLabels(['tenant'], { tenant: value })).toEqual({ tenant: 'invalid' });
    },
  );
});

describe('sealpostMetrics', () => {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  beforeAll(() => metrics.setGlobalMeterProvider(provider));
  afterAll(async () => {
    await provider.shutdown();
    metrics.disable();
  });

  it('records counters, histograms and gauges on the service meter with safe labels only', async () => {
    const m = sealpostMetrics('dispatch');
    m.counter('sealpost_bus_published_total').add(2, {
      domain: 'dispatch',
      event_type: 'dispatch.sent',
      outcome: 'ok',
    });
    m.counter('sealpost_bus_published_total').add(1, {
      domain: 'dispatch',
      event_type: 'dispatch.sent',
      outcome: 'ok',
    });
    m.counter('sealpost_dispatch_sends_total').add(1, {
      tenant: 'jane@example.com',
      channel: 'email',
      outcome: 'sent',
    });
    m.histogram('sealpost_grpc_server_duration_seconds').record(0.25, { method: 'Dispatch/StartCampaign', code: 'OK' });
    m.gauge('sealpost_bus_consumer_lag').record(7, { consumer: 'dispatch-consent', stream: 'SEALPOST_CONSENT' });

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const result = { resourceMetrics, errors };
    expect(resourceMetrics.scopeMetrics.map((s) => s.scope.name)).toContain('sealpost-dispatch');
    const published = points(result, 'sealpost_bus_published_total');
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      value: 3,
      attributes: { domain: 'dispatch', event_type: 'dispatch.sent', outcome: 'ok' },
    });
    expect(points(result, 'sealpost_dispatch_sends_total')[0]?.attributes).toEqual({
      tenant: 'invalid',
      channel: 'email',
      outcome: 'sent',
    });
    expect(points(result, 'sealpost_bus_consumer_lag')[0]?.value).toBe(7);
    expect(points(result, 'sealpost_grpc_server_duration_seconds')[0]?.value).toMatchObject({ count: 1, sum: 0.25 });
    expect(JSON.stringify(resourceMetrics.scopeMetrics)).not.toContain('jane@example.com');
  });

  it('bound handles record under labels sanitised once', async () => {
    const m = sealpostMetrics('bus');
    const bound = m.counter('sealpost_bus_dead_lettered_total').bind({
      consumer: 'vault-consent',
      event_type: 'consent.confirmed',
      reason: 'jane@example.com',
    });
    bound.add(1);
    bound.add(2);
    m.gauge('sealpost_outbox_pending').bind({ collection: 'consents' }).record(4);
    const result = await reader.collect();
    expect(points(result, 'sealpost_bus_dead_lettered_total')).toEqual([
      expect.objectContaining({
        value: 3,
        attributes: { consumer: 'vault-consent', event_type: 'consent.confirmed', reason: 'invalid' },
      }),
    ]);
    expect(points(result, 'sealpost_outbox_pending')[0]).toMatchObject({
      value: 4,
      attributes: { collection: 'consents' },
    });
  });

  it('refuses to use a metric as the wrong kind', () => {
    const m = sealpostMetrics('audit');
    expect(() => (m.counter as (name: string) => unknown)('sealpost_audit_tree_size')).toThrow(/gauge, not a counter/);
  });
});
