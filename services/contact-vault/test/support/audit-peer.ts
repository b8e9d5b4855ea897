/**
 * Test support: the REAL audit service (@sealpost/audit's startAuditService) beside the vault under test — its own
 * SQLite store and tree-head key under `dir`, a dev-CA certificate from the same `pki` as the vault's, on the same
 * embedded bus — and the vault's real gRPC AuditProofs dialling it over mutual TLS. Stopping and starting it again
 * keeps its address, store and key (a restart).
 */
import { createServer } from 'node:net';
import path from 'node:path';
import { writeDevTlsFiles, type TlsFiles } from '@sealpost/access';
import { LocalEd25519Signer, startAuditService, type RunningAuditService } from '@sealpost/audit';
import type { EmbeddedBus, ServiceBus } from '@sealpost/bus';
import { loadConfig, type SealpostConfig } from '@sealpost/config';
import type { PublicJwk } from '@sealpost/crypto';
import { GrpcAuditProofs } from '../../src/adapters/grpc/grpc-audit-proofs';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface AuditPeer {
  /** `host:port` of its gRPC API (what SEALPOST_AUDIT_GRPC_ADDR says to the vault). */
  readonly address: string;
  readonly config: SealpostConfig;
  /** The tree-head signing key, as `pnpm sealpost audit public-key` prints it. */
  publicKeys(): Promise<PublicJwk[]>;
  /** The vault's gRPC AuditProofs with the vault's own dev-CA certificate, waiting at most `maxWaitMs`. */
  proofsForVault(maxWaitMs: number): Promise<GrpcAuditProofs>;
  readonly running: boolean;
  start(): Promise<void>;
  /** Stops serving, appending and signing, and closes its bus connection (as a stopped process would). */
  stop(): Promise<void>;
}

/**
 * Starts a real audit service. `sthEverySeconds` is its tree-head cadence from configuration
 * (SEALPOST_AUDIT_STH_EVERY_SECONDS); `jwksFile` the operator-token keys it trusts.
 */
export async function startAuditPeer(options: {
  dir: string;
  pki: string;
  shared: EmbeddedBus;
  jwksFile: string;
  sthEverySeconds?: number;
}): Promise<AuditPeer> {
  const tls = await writeDevTlsFiles({ dir: options.pki, mode: 'test', service: 'audit' });
  const address = `127.0.0.1:${await freePort()}`;
  const config = loadConfig('audit', {
    SEALPOST_DATA_DIR: path.join(options.dir, 'audit-data'),
    SEALPOST_JWKS_FILE: options.jwksFile,
    SEALPOST_TLS_CA_FILE: tls.caFile,
    SEALPOST_TLS_CERT_FILE: tls.certFile,
    SEALPOST_TLS_KEY_FILE: tls.keyFile,
    SEALPOST_AUDIT_GRPC_ADDR: address,
    SEALPOST_AUDIT_HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
    SEALPOST_AUDIT_STH_EVERY_SECONDS: String(options.sthEverySeconds ?? 1),
  });
  let vaultTls: TlsFiles | undefined;
  let service: RunningAuditService | undefined;
  let bus: ServiceBus | undefined;
  const peer: AuditPeer = {
    address,
    config,
    get running() {
      return service !== undefined;
    },
    publicKeys: async () => [
      await LocalEd25519Signer.publicJwkFromFile(path.join(config.dataDir, 'audit', 'sth-signing.jwk.json')),
    ],
    async proofsForVault(maxWaitMs) {
      vaultTls ??= await writeDevTlsFiles({ dir: options.pki, mode: 'test', service: 'contact-vault' });
      return new GrpcAuditProofs({
        address,
        tls: vaultTls,
        trustDomain: config.trustDomain,
        maxWaitMs,
        backoff: { initialMs: 100, maxMs: 500 },
      });
    },
    async start() {
      if (service) return;
      bus = options.shared.forService('audit');
      service = await startAuditService({ config, bus });
    },
    async stop() {
      await service?.stop(500);
      await bus?.close().catch(() => undefined);
      service = undefined;
      bus = undefined;
    },
  };
  await peer.start();
  return peer;
}
