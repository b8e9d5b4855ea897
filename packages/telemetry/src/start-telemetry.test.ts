import { TelemetryError } from './errors';
import { runningTelemetry, startTelemetry } from './start-telemetry';

describe('startTelemetry', () => {
  afterEach(async () => {
    await runningTelemetry()?.shutdown();
  });

  it('starts nothing when disabled', async () => {
    const handle = startTelemetry({ service: 'consent', enabled: false, otlpEndpoint: 'http://127.0.0.1:1' });
    expect(handle.enabled).toBe(false);
    expect(runningTelemetry()).toBeUndefined();
    await expect(handle.shutdown()).resolves.toBeUndefined();
  });

  it('runs once per process: same service gets the same handle, another service is refused', async () => {
    const handle = startTelemetry({ service: 'consent', enabled: true });
    expect(handle.enabled).toBe(true);
    expect(runningTelemetry()).toBe(handle);
    expect(startTelemetry({ service: 'consent', enabled: true })).toBe(handle);
    let refused: unknown;
    try {
      startTelemetry({ service: 'dispatch', enabled: true });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(TelemetryError);
    expect(refused).toMatchObject({ code: 'TELEMETRY_ALREADY_STARTED' });
    await handle.shutdown();
    await handle.shutdown();
    expect(runningTelemetry()).toBeUndefined();
  });

  it('refuses an endpoint that is not an http(s) URL', () => {
    expect(() => startTelemetry({ service: 'consent', enabled: true, otlpEndpoint: 'collector:4318' })).toThrow(
      expect.objectContaining({ code: 'TELEMETRY_INVALID' }),
    );
    expect(runningTelemetry()).toBeUndefined();
  });
});
