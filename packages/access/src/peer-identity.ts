import type { PeerCertificate } from 'node:tls';
import { AccessError } from './errors';
import type { ServicePrincipal } from './principal';

/** The part of a grpc-js call (server call or intercepting call) that exposes the TLS peer. */
export interface CallWithAuthContext {
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate } | null;
}

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?)\/([a-z][a-z0-9-]{0,62})$/;

/** Parses `spiffe://<trust-domain>/<service>`; undefined for anything else (no query, no nested path). */
export function parseSpiffeId(uri: string): { trustDomain: string; service: string } | undefined {
  const m = SPIFFE_ID.exec(uri);
  if (!m?.[1] || !m[3]) return undefined;
  return { trustDomain: m[1], service: m[3] };
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
export function serviceIdentityFromPeer(call: CallWithAuthContext, trustDomain: string): ServicePrincipal {
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
  return {
    kind: 'service',
    service: parsed.service,
    trustDomain: parsed.trustDomain,
    spiffeId: `spiffe://${parsed.trustDomain}/${parsed.service}`,
  };
}
