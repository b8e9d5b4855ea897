import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TlsFiles } from '@sealpost/access';

export interface ServiceEndpoint {
  /** gRPC over mutual TLS. */
  readonly grpc: string;
  /** gRPC health only, no client certificate (what Kubernetes probes use). */
  readonly health: string;
  readonly http?: string;
}

export interface EndpointsFile {
  readonly mode: 'embedded';
  readonly pid: number;
  readonly caFile: string;
  readonly client: { readonly certFile: string; readonly keyFile: string; readonly spiffeId: string };
  readonly services: Readonly<Record<string, ServiceEndpoint>>;
}

/** Writes `<data>/endpoints.json`, the map the CLI and other local tools use to reach the running services. */
export async function writeEndpointsFile(
  dataDir: string,
  cliTls: TlsFiles,
  services: Readonly<Record<string, ServiceEndpoint>>,
): Promise<string> {
  const file = path.join(dataDir, 'endpoints.json');
  const content: EndpointsFile = {
    mode: 'embedded',
    pid: process.pid,
    caFile: cliTls.caFile,
    client: { certFile: cliTls.certFile, keyFile: cliTls.keyFile, spiffeId: 'spiffe://sealpost.dev/cli' },
    services,
  };
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  return file;
}
