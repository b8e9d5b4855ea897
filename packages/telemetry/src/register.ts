/**
 * Preload entry: `node --require tsx/cjs --require @sealpost/telemetry/register main.ts` (or
 * `node --import tsx --import @sealpost/telemetry/register main.ts`). Starts OpenTelemetry from
 * `SEALPOST_SERVICE` and `SEALPOST_OTLP_ENDPOINT` before any application module loads, which is what
 * lets the gRPC, HTTP and MongoDB instrumentations patch those modules. Export is off when no endpoint
 * is set. The SDK is flushed when the event loop empties; a draining service calls
 * `runningTelemetry()?.shutdown()` itself before exiting.
 */
import { loadTelemetrySettings } from '@sealpost/config';
import { startTelemetry } from './start-telemetry';

const settings = loadTelemetrySettings();
const handle = startTelemetry({
  service: settings.service,
  enabled: settings.enabled,
  otlpEndpoint: settings.otlpEndpoint,
});
if (handle.enabled) {
  process.once('beforeExit', () => {
    void handle.shutdown();
  });
}
