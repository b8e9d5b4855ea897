/**
 * What `pnpm start` promises, against the real runner process: it writes endpoints.json, every service answers
 * gRPC health SERVING and reflection over mutual TLS with the CLI's client certificate, a connection without a
 * client certificate is refused, and SIGTERM stops it with exit code 0 within 5 seconds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { EndpointsFile } from '../src/endpoints';
import { startRunner, type RunnerProcess } from './support/runner-process';
type ClientCtor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;
const load = (file: string) => grpc.loadPackageDefinition(protoLoader.loadSync(file, { enums: String }));
const Health = (
  load(require.resolve('grpc-health-check/proto/health/v1/health.proto')) as never as {
    grpc: { health: { v1: { Health: ClientCtor } } };
  }
).grpc.health.v1.Health;
const Reflection = (
  load(
    path.join(
      path.dirname(require.resolve('@grpc/reflection/package.json')),
      'build/proto/grpc/reflection/v1/reflection.proto',
    ),
  ) as never as { grpc: { reflection: { v1: { ServerReflection: ClientCtor } } } }
).grpc.reflection.v1.ServerReflection;

function check(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    (client as unknown as { check: (...args: unknown[]) => void }).check(
      { service: '' },
      { deadline: Date.now() + 5000 },
      (error: grpc.ServiceError | null, response?: { status: string }) =>
        error ? reject(error) : resolve(response!.status),
    ),
  );
}

function listServices(client: grpc.Client): Promise<string[]> {
  type Reply = { listServicesResponse?: { service: { name: string }[] } };
  const stream = (
    client as unknown as { serverReflectionInfo: () => grpc.ClientDuplexStream<object, Reply> }
  ).serverReflectionInfo();
  return new Promise((resolve, reject) => {
    stream.on('data', (reply: Reply) => {
      resolve((reply.listServicesResponse?.service ?? []).map((s) => s.name));
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ listServices: '' });
  });
}

describe('pnpm start (the embedded runner)', () => {
  let runner: RunnerProcess;

  beforeAll(async () => {
    runner = await startRunner();
  }, 40_000);

  afterAll(() => runner.stop());

  const endpoints = (): EndpointsFile => runner.endpoints();
  const mtls = (_file: EndpointsFile) => runner.mtls();

  it('prints where each service listens and writes endpoints.json', () => {
    const file = endpoints();
    expect(Object.keys(file.services)).toEqual(['audit', 'contact-vault']);
    for (const endpoint of Object.values(file.services)) expect(runner.output()).toContain(endpoint.grpc);
    expect(runner.output()).toContain('endpoints.json');
  });

  it('answers gRPC health SERVING and reflection over mutual TLS at the listed address', async () => {
    const file = endpoints();
    for (const endpoint of Object.values(file.services)) {
      const health = new Health(endpoint.grpc, mtls(file));
      const reflection = new Reflection(endpoint.grpc, mtls(file));
      try {
        expect(await check(health)).toBe('SERVING');
        expect(await listServices(reflection)).toEqual(expect.arrayContaining(['grpc.health.v1.Health']));
      } finally {
        health.close();
        reflection.close();
      }
    }
  });

  it('describes each service by reflection (what grpcurl relies on)', async () => {
    const file = endpoints();
    const expected = { audit: 'sealpost.audit.v1.AuditLog', 'contact-vault': 'sealpost.vault.v1.ContactVault' };
    for (const [name, service] of Object.entries(expected)) {
      const reflection = new Reflection(file.services[name]!.grpc, mtls(file));
      try {
        expect(await listServices(reflection)).toContain(service);
      } finally {
        reflection.close();
      }
    }
  });

  it('refuses a connection without a client certificate on the gRPC port, serves probes on the health port', async () => {
    const file = endpoints();
    const endpoint = file.services.audit!;
    const noClientCert = new Health(endpoint.grpc, grpc.credentials.createSsl(readFileSync(file.caFile)));
    await expect(check(noClientCert)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    noClientCert.close();
    // The probe listener is what the kubelet uses: health only, no client certificate.
    const probe = new Health(endpoint.health, grpc.credentials.createInsecure());
    expect(await check(probe)).toBe('SERVING');
    probe.close();
  });

  it('stops cleanly on SIGTERM: exit code 0 within 5 seconds', async () => {
    const started = Date.now();
    runner.child.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(runner.output()).toContain('stopped cleanly');
  });
});
