import * as grpc from '@grpc/grpc-js';
import { assertProductionTrustBundle, loadTlsMaterial, type RuntimeMode } from '@sealpost/access';

/** TLS of the main listener: PEM values, or files that are re-read (hot reload of short-lived certificates). */
export type ServerTlsOptions = (
  | { readonly ca: Buffer | string; readonly cert: Buffer | string; readonly key: Buffer | string }
  | {
      readonly caFile: string;
      readonly certFile: string;
      readonly keyFile: string;
      readonly refreshIntervalMs?: number;
    }
) & {
  /** Mutual TLS: refuse connections without a client certificate from `ca`. Default true. */
  readonly requireClientCert?: boolean;
};

const buf = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v) : v);

/**
 * A certificate provider that never changes (PEM given in memory). It answers listeners on the next tick:
 * grpc-js 1.14 registers its own watcher only after subscribing to the provider, so a synchronous answer is lost
 * and the listener would drop every connection.
 */
class StaticCertificateProvider implements grpc.experimental.CertificateProvider {
  constructor(
    private readonly ca: Buffer,
    private readonly cert: Buffer,
    private readonly key: Buffer,
  ) {}
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    process.nextTick(() => listener({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    process.nextTick(() => listener({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(): void {}
}

/**
 * Server credentials for the main listener, and `loaded()` which resolves once the certificates are in place.
 * In production the trust bundle is checked first: a bundle holding the dev CA stops start-up (`DEV_CA_IN_PRODUCTION`).
 */
export async function createServerCredentials(
  tls: ServerTlsOptions,
  mode: RuntimeMode | string,
): Promise<{ credentials: grpc.ServerCredentials; loaded: () => Promise<void> }> {
  const requireClientCert = tls.requireClientCert ?? true;
  let provider: grpc.experimental.CertificateProvider;
  if ('caFile' in tls) {
    // Read once up front: fail fast with a clear error instead of a server that silently never handshakes.
    const material = await loadTlsMaterial(tls);
    if (mode === 'production') assertProductionTrustBundle(material.ca);
    provider = new grpc.experimental.FileWatcherCertificateProvider({
      caCertificateFile: tls.caFile,
      certificateFile: tls.certFile,
      privateKeyFile: tls.keyFile,
      refreshIntervalMs: tls.refreshIntervalMs ?? 60_000,
    });
  } else {
    if (mode === 'production') assertProductionTrustBundle(tls.ca);
    provider = new StaticCertificateProvider(buf(tls.ca), buf(tls.cert), buf(tls.key));
  }
  // One provider serves both roles, so grpc-js's argument order (which differs between its typings and its
  // implementation in 1.14) cannot mix up the CA and the identity.
  return {
    credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, provider, requireClientCert),
    loaded: () => firstMaterial(provider),
  };
}

/**
 * Resolves once the provider has delivered both a CA and an identity: until then grpc-js drops connections,
 * so a server must not report SERVING earlier. Rejects after `timeoutMs`.
 */
function firstMaterial(provider: grpc.experimental.CertificateProvider, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let ca = false;
    let identity = false;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      provider.removeCaCertificateListener(onCa);
      provider.removeIdentityCertificateListener(onIdentity);
      if (err) reject(err);
      else resolve();
    };
    const check = (): void => {
      if (ca && identity) done();
    };
    const onCa: grpc.experimental.CaCertificateUpdateListener = (update) => {
      ca = update !== null;
      check();
    };
    const onIdentity: grpc.experimental.IdentityCertificateUpdateListener = (update) => {
      identity = update !== null;
      check();
    };
    const timer = setTimeout(() => done(new Error('TLS material did not load in time')), timeoutMs);
    provider.addCaCertificateListener(onCa);
    provider.addIdentityCertificateListener(onIdentity);
  });
}

/** Credentials of the health-only listener: plaintext, or TLS that never asks for a client certificate. */
export function createHealthCredentials(
  tls: { cert: Buffer | string; key: Buffer | string } | undefined,
): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: buf(tls.cert), private_key: buf(tls.key) }], false);
}
