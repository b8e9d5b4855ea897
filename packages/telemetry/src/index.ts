/** `@sealpost/telemetry`: OpenTelemetry start-up, metrics table, trace propagation and the redacting logger. */
export { TelemetryError } from './errors';
export { createLogger, errorCode, type Logger, type LoggerOptions } from './logger';
export {
  METRICS,
  METRIC_NAMES,
  meterFor,
  sanitizeLabels,
  sealpostMetrics,
  type BoundCounter,
  type BoundRecord,
  type CounterHandle,
  type MetricKind,
  type MetricName,
  type MetricSpec,
  type RecordHandle,
  type SealpostMetrics,
} from './metrics';
export { extractTraceContext, injectTraceContext, type HeaderCarrier } from './propagation';
export {
  REDACTED,
  isSensitiveKey,
  redactDeep,
  redactQueryValues,
  safeError,
  scrubText,
  type SafeError,
} from './redact';
export { runningTelemetry, startTelemetry, type TelemetryHandle, type TelemetryOptions } from './start-telemetry';
export { startTestTracing, type TestTracing } from './test-tracing';
export { startTestMetrics, type TestMetricPoint, type TestMetrics } from './test-metrics';
