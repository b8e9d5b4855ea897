/**
 * Everything embedded mode stands in for, prepared once per start: the data directory, the dev CA with a
 * certificate per service (and one for the CLI), the dev token issuer whose JWKS the services trust, and the
 * durable in-process bus. Production refuses each of these (see @sealpost/config).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { openDevTokenIssuer, writeDevTlsFiles, type TlsFiles } from '@sealpost/access';
import { EmbeddedBus } from '@sealpost/bus';
import { loadConfig, type SealpostConfig, type ServiceName } from '@sealpost/config';

export interface EmbeddedEnvironment {
  readonly dataDir: string;
  readonly configs: ReadonlyMap<ServiceName, SealpostConfig>;
  readonly bus: EmbeddedBus;
  /** Client certificate for the CLI and other local tools (SPIFFE id `spiffe://sealpost.dev/cli`). */
  readonly cliTls: TlsFiles;
  close(): Promise<void>;
}

export class NotEmbeddedModeError extends Error {
  readonly code = 'RUNNER_NEEDS_EMBEDDED_MODE';
  constructor() {
    super('the embedded runner runs SEALPOST_MODE=embedded only; in production run each service as its own process');
  }
}

/** Prepares the embedded stand-ins for `services`. Throws `ConfigError` or `NotEmbeddedModeError`. */
export async function prepareEmbeddedEnvironment(services: readonly ServiceName[]): Promise<EmbeddedEnvironment> {
  const configs = new Map(services.map((service) => [service, loadConfig(service)] as const));
  const first = configs.values().next().value as SealpostConfig;
  if (first.mode !== 'embedded') throw new NotEmbeddedModeError();
  const dataDir = first.dataDir;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  // The dev CA lives beside the TLS files configuration points at (`<data>/dev-ca/`).
  const devCaDir = path.dirname(first.tls.caFile);
  for (const [service, config] of configs) {
    // Leaves are short-lived and re-issued on every start; the CA itself persists.
    if (config.tls.dev) await writeDevTlsFiles({ dir: devCaDir, mode: config.mode, service, files: config.tls });
  }
  const cliTls = await writeDevTlsFiles({
    dir: devCaDir,
    mode: first.mode,
    service: 'cli',
    usage: 'client',
    files: {
      caFile: first.tls.caFile,
      certFile: path.join(devCaDir, 'cli.pem'),
      keyFile: path.join(devCaDir, 'cli-key.pem'),
    },
  });
  if (first.auth.devTokens && first.auth.jwks.kind === 'file') {
    // Creates the dev signing key on first run and publishes its JWKS where the services read it.
    await openDevTokenIssuer({ dir: path.dirname(first.auth.jwks.file), mode: first.mode });
  }
  if (first.bus.kind !== 'embedded') throw new NotEmbeddedModeError();
  const bus = EmbeddedBus.open(first.bus.file);
  return { dataDir, configs, bus, cliTls, close: () => bus.close() };
}
