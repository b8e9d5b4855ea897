/** Starts the real embedded runner (`pnpm start` minus the install step) on free ports in a temp data dir. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openDevTokenIssuer } from '@sealpost/access';
import { auditV1, vaultV1 } from '@sealpost/proto';
import { waitFor } from '@sealpost/testkit';
import type { EndpointsFile } from '../../src/endpoints';

const ROOT = path.resolve(__dirname, '../../../..');

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RunnerProcess {
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
  endpoints(): EndpointsFile;
  /** Mutual-TLS credentials with the CLI's client certificate from endpoints.json. */
  mtls(): grpc.ChannelCredentials;
  /** Kills it at once and removes its data directory. */
  stop(): void;
  /** SIGTERM, as Ctrl-C would (it drains, and writes any profile Node was asked for), then `stop` after 10 s at most. */
  stopGracefully(): Promise<void>;
}

/** `env` adds settings (e.g. a faster tree-head cadence for a test); `nodeArgs` Node flags (a benchmark's profiler). */
export async function startRunner(
  env: Record<string, string> = {},
  options: { readonly nodeArgs?: readonly string[] } = {},
): Promise<RunnerProcess> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-runner-'));
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SEALPOST_')));
  // Exactly what scripts/start.sh runs once dependencies are installed.
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', 'services/runner/src/main.ts'],
    {
      cwd: ROOT,
      env: {
        ...clean,
        SEALPOST_DATA_DIR: dataDir,
        SEALPOST_AUDIT_GRPC_ADDR: `127.0.0.1:${ports[0]}`,
        SEALPOST_AUDIT_HEALTH_ADDR: `127.0.0.1:${ports[1]}`,
        SEALPOST_VAULT_GRPC_ADDR: `127.0.0.1:${ports[2]}`,
        SEALPOST_VAULT_HEALTH_ADDR: `127.0.0.1:${ports[3]}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The banner's last line is printed after endpoints.json is written: waiting for it means both are there.
  await waitFor('the start banner', () => output.includes('Ctrl-C stops.') || child.exitCode !== null, {
    timeoutMs: 30_000,
  });
  if (!existsSync(path.join(dataDir, 'endpoints.json'))) throw new Error(`runner did not start:\n${output}`);
  const stop = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  const endpoints = (): EndpointsFile => JSON.parse(readFileSync(path.join(dataDir, 'endpoints.json'), 'utf8'));
  return {
    dataDir,
    child,
    exited,
    output: () => output,
    endpoints,
    mtls: () => {
      const file = endpoints();
      return grpc.credentials.createSsl(
        readFileSync(file.caFile),
        readFileSync(file.client.keyFile),
        readFileSync(file.client.certFile),
      );
    },
    stop,
    async stopGracefully() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      stop();
    },
  };
}

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: (e: grpc.ServiceError | null, r: never) => void,
) => void;

/** A unary call on a generic client with an operator token (and extra metadata such as a purpose). */
export function caller(client: grpc.Client) {
  return <T>(method: string, request: unknown, token: string, extra: Record<string, string> = {}): Promise<T> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
      const fn = (client as unknown as Record<string, Unary>)[method]!;
      fn.call(client, request, metadata, (error, response: T) => (error ? reject(error) : resolve(response)));
    });
}

/**
 * Vault and audit clients over the runner's mutual TLS, and operator tokens for tenant `acme` from the dev issuer
 * whose JWKS the runner's services trust: `roles` maps a token name to its role, subject and MFA.
 */
export async function runnerClients(
  runner: RunnerProcess,
  roles: Record<string, { role: string; subject: string; mfa?: boolean }>,
): Promise<{ vault: grpc.Client; audit: grpc.Client; tokens: Record<string, string> }> {
  const endpoints = runner.endpoints();
  const vault = new (grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault'))(
    endpoints.services['contact-vault']!.grpc,
    runner.mtls(),
  );
  const audit = new (grpc.makeGenericClientConstructor(auditV1.AuditLogService, 'AuditLog'))(
    endpoints.services.audit!.grpc,
    runner.mtls(),
  );
  const issuer = await openDevTokenIssuer({ dir: path.join(runner.dataDir, 'dev-identity'), mode: 'embedded' });
  const tokens: Record<string, string> = {};
  for (const [name, { role, subject, mfa }] of Object.entries(roles)) {
    tokens[name] = await issuer.issue({ tenant: 'acme', role, subject, ...(mfa ? { mfa } : {}) });
  }
  return { vault, audit, tokens };
}
