import type { PeerCertificate } from 'node:tls';
import { AccessError } from './errors';
import type { ServicePrincipal } from './principal';

/** The part of a grpc-js call (server call or intercepting call) that exposes the TLS peer. */
export interface CallWithAuthContext {
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate } | null;
}

const TRUST_DOMAIN = '[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?';
const NAME = '[a-z][a-z0-9-]{0,62}';
const SPIFFE_ID = new RegExp(`^spiffe://(${TRUST_DOMAIN})/(${NAME})$`);
// csi-driver-spiffe's form: the service is the pod's service account, qualified by its namespace.
const KUBERNETES_SPIFFE_ID = new RegExp(
  `^spiffe://(${TRUST_DOMAIN})/ns/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)/sa/(${NAME})$`,
);

export interface SpiffeId {
  readonly trustDomain: string;
  readonly service: string;
  /** Set for `spiffe://<td>/ns/<namespace>/sa/<service>` ids. */
  readonly namespace?: string;
}

/**
 * Parses `spiffe://<trust-domain>/<service>` or the Kubernetes form `spiffe://<trust-domain>/ns/<ns>/sa/<service>`;
 * undefined for anything else (no query, no other paths).
 */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  const plain = SPIFFE_ID.exec(uri);
  if (plain?.[1] && plain[2]) return { trustDomain: plain[1], service: plain[2] };
  const k8s = KUBERNETES_SPIFFE_ID.exec(uri);
  if (k8s?.[1] && k8s[2] && k8s[3]) return { trustDomain: k8s[1], namespace: k8s[2], service: k8s[3] };
  return undefined;
}

/** URI entries of Node's `subjectaltname` string ("DNS:a, URI:spiffe://…, IP Address:…"). */
function uriSans(cert: PeerCertificate): string[] {
  const raw = cert.subjectaltname ?? '';
  // Node quotes entries containing separators as JSON strings; a quoted URI cannot be a valid SPIFFE id anyway.
  return raw
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

/**
 * The calling service's identity from its verified client certificate. Throws UNAUTHENTICATED when the call has
 * no verified certificate, when the certificate carries no (or more than one) SPIFFE id, or one from another
 * trust domain.
 */
export function serviceIdentityFromPeer(
  call: CallWithAuthContext,
  trustDomain: string,
  /** Namespace whose `ns/<ns>/sa/<service>` ids are accepted; without it, only `spiffe://<td>/<service>`. */
  namespace?: string,
): ServicePrincipal {
  const ctx = call.getAuthContext();
  // grpc-js fills the context only for TLS sockets whose peer certificate verified against the server's CA.
  if (!ctx || ctx.transportSecurityType !== 'ssl' || !ctx.sslPeerCertificate) {
    throw new AccessError('UNAUTHENTICATED', 'PEER_CERT_MISSING', 'a verified client certificate is required');
  }
  const spiffe = uriSans(ctx.sslPeerCertificate).filter((uri) => uri.startsWith('spiffe://'));
  const parsed = spiffe.length === 1 && spiffe[0] !== undefined ? parseSpiffeId(spiffe[0]) : undefined;
  if (!parsed) {
    throw new AccessError(
      'UNAUTHENTICATED',
      'PEER_IDENTITY_INVALID',
      'the client certificate must carry exactly one URI SAN spiffe://<trust-domain>/<service>',
    );
  }
  if (parsed.trustDomain !== trustDomain) {
    throw new AccessError(
      'UNAUTHENTICATED',
      'TRUST_DOMAIN_MISMATCH',
      'the client certificate is from another trust domain',
    );
  }
  // A service account of the same name in another namespace is another workload, not this service.
  if (parsed.namespace !== undefined && parsed.namespace !== namespace) {
    throw new AccessError('UNAUTHENTICATED', 'NAMESPACE_MISMATCH', 'the client certificate is from another namespace');
  }
  return {
    kind: 'service',
    service: parsed.service,
    trustDomain: parsed.trustDomain,
    spiffeId: spiffe[0]!,
  };
}
