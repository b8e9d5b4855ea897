import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { openDevCa, type CertificateAuthority, type IssuedCertificate } from '@sealpost/access';

export const FIXTURES = path.join(__dirname, 'fixtures');

/** A temp directory with the dev CA, a server certificate and client certificates for the named services. */
export interface Pki {
  readonly dir: string;
  readonly ca: CertificateAuthority;
  readonly server: IssuedCertificate;
  readonly clients: Record<string, IssuedCertificate>;
  cleanup(): Promise<void>;
}

export async function makePki(clientServices: readonly string[]): Promise<Pki> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealpost-server-test-'));
  const ca = await openDevCa({ dir, mode: 'test' });
  const server = await ca.issue({ service: 'contact-vault', usage: 'server' });
  const clients: Record<string, IssuedCertificate> = {};
  for (const service of clientServices) clients[service] = await ca.issue({ service, usage: 'client' });
  return { dir, ca, server, clients, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

type ClientCtor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => grpc.Client;

/** Loads a fixture proto and returns the client constructor of `fullName` and the service definition. */
export function loadService(
  file: string,
  fullName: string,
): { Client: ClientCtor; definition: grpc.ServiceDefinition } {
  const pkgDef = protoLoader.loadSync(path.join(FIXTURES, file), { keepCase: false, defaults: true, longs: String });
  const loaded = grpc.loadPackageDefinition(pkgDef);
  const Client = fullName
    .split('.')
    .reduce<unknown>((obj, key) => (obj as Record<string, unknown>)[key], loaded) as ClientCtor & {
    service: grpc.ServiceDefinition;
  };
  return { Client, definition: Client.service };
}

/** TLS client credentials trusting `caPem`, presenting `client` when given. */
export function clientCredentials(caPem: string, client?: IssuedCertificate): grpc.ChannelCredentials {
  return client
    ? grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : grpc.credentials.createSsl(Buffer.from(caPem));
}

type UnaryMethod<T> = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: T) => void,
) => grpc.ClientUnaryCall;

export interface CallResult<T> {
  readonly error?: grpc.ServiceError;
  readonly response?: T;
  readonly reason?: string;
}

/** Calls a unary method and resolves with the error or response (never rejects). */
export function call<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  request: object,
  options: { token?: string; metadata?: Record<string, string>; deadlineMs?: number } = {},
): Promise<CallResult<T>> {
  const md = new grpc.Metadata();
  if (options.token !== undefined) md.set('authorization', `Bearer ${options.token}`);
  for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
  const callOptions: grpc.CallOptions = { deadline: Date.now() + (options.deadlineMs ?? 5000) };
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, UnaryMethod<T>>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, request, md, callOptions, (error: grpc.ServiceError | null, response: T) => {
      if (error) {
        const [reason] = error.metadata?.get('x-sealpost-reason') ?? [];
        resolve({ error, reason: typeof reason === 'string' ? reason : undefined });
      } else resolve({ response });
    });
  });
}

export function closeAll(clients: readonly grpc.Client[]): void {
  for (const c of clients) c.close();
}
