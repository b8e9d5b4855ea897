/**
 * The register entry in a real child process: gRPC auto-instrumentation only works when the SDK starts
 * before @grpc/grpc-js loads under plain node (not inside jest), so this is where it is proved.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '@sealpost/testkit';

const ROOT = path.resolve(__dirname, '../../..');
const REGISTER = path.resolve(__dirname, '../src/register.ts');
const FIXTURE = path.resolve(__dirname, 'fixtures/traced-app.ts');
const CANARY_EMAIL = 'canary.probe@example.com';
const CANARY_TOKEN = 'canaryTokenQ7x2';

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

function runFixture(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--require', require.resolve('tsx/cjs'), '--require', REGISTER, FIXTURE, CANARY_EMAIL, CANARY_TOKEN],
      // A clean environment: no OTEL_* or stray SEALPOST_* from the developer's shell.
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('@sealpost/telemetry/register in a child process', () => {
  let receiver: OtlpReceiver;
  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    await receiver.close();
  });

  it('exports connected gRPC and HTTP spans and metrics over OTLP, without the canaries', async () => {
    const { code, stderr } = await runFixture({ SEALPOST_SERVICE: 'probe', SEALPOST_OTLP_ENDPOINT: receiver.url });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });

    const spans = receiver.spans();
    const find = (predicate: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan => {
      const span = spans.find(predicate);
      if (!span) throw new Error(`no ${what} span among: ${spans.map((s) => `${s.name}/${s.kind}`).join(', ')}`);
      return span;
    };
    const root = find((s) => s.name === 'probe.roundtrip', 'root');
    const grpcClient = find((s) => /Probe\/Echo$/.test(s.name) && s.kind === SPAN_KIND_CLIENT, 'gRPC client');
    const grpcServer = find((s) => /Probe\/Echo$/.test(s.name) && s.kind === SPAN_KIND_SERVER, 'gRPC server');
    const httpClient = find((s) => s.name.startsWith('GET') && s.kind === SPAN_KIND_CLIENT, 'HTTP client');
    const httpServer = find((s) => s.name.startsWith('GET') && s.kind === SPAN_KIND_SERVER, 'HTTP server');

    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['sealpost-probe']));
    for (const span of [grpcClient, grpcServer, httpClient, httpServer]) expect(span.traceId).toBe(root.traceId);
    expect(root.parentSpanId).toBe('');
    expect(grpcClient.parentSpanId).toBe(root.spanId);
    // The server side continued the trace from the traceparent the client put in gRPC metadata.
    expect(grpcServer.parentSpanId).toBe(grpcClient.spanId);
    expect(httpClient.parentSpanId).toBe(root.spanId);
    expect(httpServer.parentSpanId).toBe(httpClient.spanId);

    // Query values are replaced on both sides; keys stay for debugging.
    expect(httpServer.attributes['url.query']).toBe('token=REDACTED&lang=REDACTED');
    expect(httpClient.attributes['url.full']).toMatch(/\/confirm\?token=REDACTED&lang=REDACTED$/);

    const metricBodies = receiver.bodies.filter((b) => b.path === '/v1/metrics');
    expect(metricBodies.length).toBeGreaterThan(0);
    expect(Buffer.concat(metricBodies.map((b) => b.body)).toString('latin1')).toContain('sealpost_bus_published_total');

    const everything = Buffer.concat(receiver.bodies.map((b) => b.body)).toString('latin1');
    expect(everything).not.toContain(CANARY_EMAIL);
    expect(everything).not.toContain(CANARY_TOKEN);
  });

  it('exports nothing when SEALPOST_OTLP_ENDPOINT is unset, and the app still runs', async () => {
    const { code, stderr } = await runFixture({ SEALPOST_SERVICE: 'probe' });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(receiver.bodies).toEqual([]);
  });

  it('stops the process before the app loads when SEALPOST_SERVICE is missing', async () => {
    const { code, stderr } = await runFixture({ SEALPOST_OTLP_ENDPOINT: receiver.url });
    expect(code).not.toBe(0);
    expect(stderr).toContain('SEALPOST_SERVICE: required');
    expect(receiver.bodies).toEqual([]);
  });
});
