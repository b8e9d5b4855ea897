/** Starts the real embedded runner (`pnpm start` minus the install step) on free ports in a temp data dir. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
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
  stop(): void;
}

/** `env` adds settings (e.g. a faster tree-head cadence for a test). */
export async function startRunner(env: Record<string, string> = {}): Promise<RunnerProcess> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-runner-'));
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SEALPOST_')));
  // Exactly what scripts/start.sh runs once dependencies are installed.
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/runner/src/main.ts'], {
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
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('endpoints.json', () => existsSync(path.join(dataDir, 'endpoints.json')), { timeoutMs: 30_000 });
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
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
