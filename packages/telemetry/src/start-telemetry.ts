import type { IncomingMessage, RequestOptions } from 'node:http';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { MongoDBInstrumentation } from '@opentelemetry/instrumentation-mongodb';
import { envDetector, hostDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { TelemetryError } from './errors';
import { redactQueryValues } from './redact';

export interface TelemetryOptions {
  /** Service name; the resource's `service.name` is `sealpost-<service>`. */
  readonly service: string;
  /** OTLP/HTTP base URL (`http://collector:4318`); traces and metrics are exported only when set. */
  readonly otlpEndpoint?: string;
  /** False (tests, or no endpoint configured) starts nothing and returns a no-op handle. */
  readonly enabled: boolean;
  /** Metric export interval; 15 s by default. */
  readonly metricIntervalMillis?: number;
}

export interface TelemetryHandle {
  readonly enabled: boolean;
  /** Flushes pending spans and metrics and stops the SDK. Safe to call more than once. */
  shutdown(): Promise<void>;
}

let running: { service: string; handle: TelemetryHandle } | undefined;

/**
 * Starts OpenTelemetry for this process: gRPC, HTTP and MongoDB instrumentation, W3C trace-context
 * propagation, OTLP (protobuf over HTTP) export of traces and metrics. Must run before the instrumented
 * modules load (use the `@sealpost/telemetry/register` entry). Throws `TelemetryError` if already started
 * for another service.
 */
export function startTelemetry(options: TelemetryOptions): TelemetryHandle {
  if (!options.enabled) return { enabled: false, shutdown: async () => {} };
  if (running) {
    if (running.service === options.service) return running.handle;
    throw new TelemetryError('TELEMETRY_ALREADY_STARTED', `telemetry already started for sealpost-${running.service}`);
  }
  const base = options.otlpEndpoint?.replace(/\/+$/, '');
  if (base !== undefined && !/^https?:\/\/[^/]/.test(base)) {
    throw new TelemetryError('TELEMETRY_INVALID', 'otlpEndpoint must be an http(s) URL');
  }
  const serviceName = `sealpost-${options.service}`;

  const sdk = new NodeSDK({
    serviceName,
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.namespace': 'sealpost' }),
    // The process detector would record the command line; env and host attributes are enough.
    resourceDetectors: [envDetector, hostDetector],
    contextManager: new AsyncLocalStorageContextManager(),
    textMapPropagator: new W3CTraceContextPropagator(),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    instrumentations: instrumentations(),
    // Explicit, possibly empty, lists: left undefined, the SDK would fall back to OTEL_* variables and
    // start exporters of its own to localhost.
    spanProcessors:
      base === undefined ? [] : [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` }))],
    metricReaders:
      base === undefined
        ? []
        : [
            new PeriodicExportingMetricReader({
              exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
              exportIntervalMillis: options.metricIntervalMillis ?? 15_000,
            }),
          ],
    logRecordProcessors: [],
  });
  sdk.start();

  let stopping: Promise<void> | undefined;
  const handle: TelemetryHandle = {
    enabled: true,
    shutdown: () => {
      stopping ??= sdk.shutdown().finally(() => {
        if (running?.handle === handle) running = undefined;
      });
      return stopping;
    },
  };
  running = { service: options.service, handle };
  return handle;
}

/** The handle of the SDK started in this process (e.g. by the register entry), for shutdown on drain. */
export function runningTelemetry(): TelemetryHandle | undefined {
  return running?.handle;
}

function instrumentations() {
  return [
    new GrpcInstrumentation(),
    new HttpInstrumentation({
      // Tokens (confirm/unsubscribe links) and addresses can travel in query strings: keep the keys only.
      startIncomingSpanHook: (request: IncomingMessage) =>
        request.url?.includes('?') ? { 'url.query': redactQueryValues(request.url).split('?')[1] ?? '' } : {},
      startOutgoingSpanHook: (request: RequestOptions) => {
        const path = request.path ?? '/';
        if (!path.includes('?')) return {};
        const protocol = request.protocol ?? 'http:';
        const host = request.hostname ?? request.host ?? 'localhost';
        const port = request.port ? `:${request.port}` : '';
        return { 'url.full': `${protocol}//${host}${port}${redactQueryValues(path)}` };
      },
    }),
    // The default statement serializer replaces every value with '?'; enhanced reporting would not.
    new MongoDBInstrumentation({ enhancedDatabaseReporting: false }),
  ];
}
