import { metrics, type Attributes } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint } from '@opentelemetry/sdk-metrics';

/** One recorded series: its labels and value (a number, or `{ count, sum, ... }` for histograms). */
export interface TestMetricPoint {
  readonly attributes: Attributes;
  readonly value: unknown;
}

export interface TestMetrics {
  /** Collects now: every metric name with data points, mapped to its points (cumulative since start). */
  collect(): Promise<Map<string, TestMetricPoint[]>>;
  /** The points of one metric (empty when it recorded nothing). */
  points(name: string): Promise<TestMetricPoint[]>;
  /** Sum of a counter's points whose labels include `labels` (0 when none match). */
  sum(name: string, labels?: Attributes): Promise<number>;
  /** Unregisters the global meter provider. */
  shutdown(): Promise<void>;
}

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/**
 * Records metrics in memory for tests: registers a global meter provider read on demand. Instruments are
 * bound to the provider current when they are created, so start this BEFORE building the code under test.
 */
export function startTestMetrics(): TestMetrics {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  // The API keeps the first registration; clear leftovers of an earlier suite in the same worker.
  metrics.disable();
  metrics.setGlobalMeterProvider(provider);
  const collect = async (): Promise<Map<string, TestMetricPoint[]>> => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, 'metric collection failed');
    const out = new Map<string, TestMetricPoint[]>();
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics) {
        const list = out.get(metric.descriptor.name) ?? [];
        for (const p of metric.dataPoints as DataPoint<unknown>[])
          list.push({ attributes: p.attributes, value: p.value });
        if (list.length > 0) out.set(metric.descriptor.name, list);
      }
    return out;
  };
  const points = async (name: string) => (await collect()).get(name) ?? [];
  return {
    collect,
    points,
    sum: async (name, labels = {}) =>
      (await points(name))
        .filter((p) => Object.entries(labels).every(([k, v]) => p.attributes[k] === v))
        .reduce((total, p) => total + (typeof p.value === 'number' ? p.value : 0), 0),
    shutdown: async () => {
      await provider.shutdown();
      metrics.disable();
    },
  };
}
