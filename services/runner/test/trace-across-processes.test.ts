/**
 * One trace across two real processes, a gRPC call and a bus message: A (root span, gRPC client) → B (gRPC
 * server, publishes an event) → A (consumes it). Both run under @sealpost/telemetry/register with OTLP export
 * to a local receiver; gRPC auto-instrumentation only works outside jest's module loader, hence processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOtlpReceiver, waitFor, type OtlpReceiver } from '@sealpost/testkit';

const ROOT = path.resolve(__dirname, '../../..');
const REGISTER = require.resolve('@sealpost/telemetry/register');
const SPAN_KIND = { server: 2, client: 3, producer: 4, consumer: 5 } as const;

function start(fixture: string, args: string[], service: string, otlp: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--require',
      require.resolve('tsx/cjs'),
      '--require',
      REGISTER,
      path.join(__dirname, 'fixtures', fixture),
      ...args,
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        SEALPOST_SERVICE: service,
        SEALPOST_OTLP_ENDPOINT: otlp,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('a trace across two processes', () => {
  let receiver: OtlpReceiver;
  let dir: string;
  beforeEach(async () => {
    receiver = await startOtlpReceiver();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-trace-'));
  });
  afterEach(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('links client, server, producer and consumer spans of both processes into one trace', async () => {
    const busFile = path.join(dir, 'bus.sqlite');
    const portFile = path.join(dir, 'port');
    const server = start('trace-server.ts', [busFile, portFile], 'trace-b', receiver.url);
    const serverDone = finished(server);
    await waitFor('trace server port', () => existsSync(portFile) && readFileSync(portFile, 'utf8').length > 0, {
      timeoutMs: 20_000,
    });

    const client = await finished(
      start('trace-client.ts', [busFile, readFileSync(portFile, 'utf8')], 'trace-a', receiver.url),
    );
    expect(client).toMatchObject({ code: 0, stderr: '' });
    server.kill('SIGTERM');
    expect((await serverDone).code).toBe(0);

    const traceId = client.stdout.trim();
    const spans = receiver.spans().filter((span) => span.traceId === traceId);
    const one = (service: string, kind: number) => {
      const found = spans.filter((span) => span.service === service && span.kind === kind);
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    const grpcClient = one('sealpost-trace-a', SPAN_KIND.client);
    const grpcServer = one('sealpost-trace-b', SPAN_KIND.server);
    const producer = one('sealpost-trace-b', SPAN_KIND.producer);
    const consumer = one('sealpost-trace-a', SPAN_KIND.consumer);
    // The parent chain crosses the gRPC call and then the bus message.
    expect(grpcServer.parentSpanId).toBe(grpcClient.spanId);
    expect(producer.parentSpanId).toBe(grpcServer.spanId);
    expect(consumer.parentSpanId).toBe(producer.spanId);
  }, 60_000);
});
