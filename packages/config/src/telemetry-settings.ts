import { EnvReader, type Env } from './env-reader';
import { ConfigError } from './errors';
import { LOG_LEVELS, type LogLevel } from './settings';
import { oneOf, serviceTag, url } from './values';

/** What the telemetry register entry needs before any application module (or its config) loads. */
export interface TelemetrySettings {
  /** `SEALPOST_SERVICE`, reported as `sealpost-<service>`. */
  readonly service: string;
  readonly otlpEndpoint?: string;
  /** Export is on exactly when an OTLP endpoint is configured. */
  readonly enabled: boolean;
  readonly logLevel: LogLevel;
}

/**
 * Reads only the telemetry settings (`SEALPOST_SERVICE`, `SEALPOST_OTLP_ENDPOINT`, `SEALPOST_LOG_LEVEL`).
 * Throws `ConfigError` naming each bad or missing variable.
 */
export function loadTelemetrySettings(env: Env = process.env): TelemetrySettings {
  const r = new EnvReader(env);
  const service = r.read('SEALPOST_SERVICE', serviceTag);
  if (service === undefined) r.require('SEALPOST_SERVICE', 'required by the telemetry register entry');
  const otlpEndpoint = r.read('SEALPOST_OTLP_ENDPOINT', url(['http', 'https'], { noPassword: true }));
  const logLevel = r.read('SEALPOST_LOG_LEVEL', oneOf(LOG_LEVELS)) ?? 'info';
  if (r.list().length > 0 || service === undefined) throw new ConfigError(r.list());
  return Object.freeze({
    service,
    ...(otlpEndpoint !== undefined && { otlpEndpoint }),
    enabled: otlpEndpoint !== undefined,
    logLevel,
  });
}
