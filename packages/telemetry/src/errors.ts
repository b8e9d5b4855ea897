/** Telemetry could not start as asked. Codes: `TELEMETRY_ALREADY_STARTED`, `TELEMETRY_INVALID`. */
export class TelemetryError extends Error {
  constructor(
    readonly code: 'TELEMETRY_ALREADY_STARTED' | 'TELEMETRY_INVALID',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TelemetryError';
  }
}
