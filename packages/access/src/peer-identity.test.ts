import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId, serviceIdentityFromPeer } from './peer-identity';

// Shaped like grpc-js's AuthContext; the real path is covered over TLS in packages/server/test.
const callWith = (subjectaltname?: string, transportSecurityType = 'ssl') => ({
  getAuthContext: () => ({
    transportSecurityType,
    sslPeerCertificate: subjectaltname === undefined ? undefined : ({ subjectaltname } as PeerCertificate),
  }),
});

describe('parseSpiffeId', () => {
  it.each([
    ['spiffe://sealpost.dev/dispatch', { trustDomain: 'sealpost.dev', service: 'dispatch' }],
    ['spiffe://prod.example.com/contact-vault', { trustDomain: 'prod.example.com', service: 'contact-vault' }],
    [
      'spiffe://prod.example.com/ns/sealpost/sa/dispatch',
      { trustDomain: 'prod.example.com', namespace: 'sealpost', service: 'dispatch' },
    ],
  ])('parses %s', (uri, expected) => expect(parseSpiffeId(uri)).toEqual(expected));

  it.each([
    'spiffe://sealpost.dev',
    'spiffe://sealpost.dev/',
    'spiffe://sealpost.dev/ns/default/sa/dispatch/extra',
    'spiffe://sealpost.dev/ns/Default/sa/dispatch',
    'spiffe://sealpost.dev/ns//sa/dispatch',
    'spiffe://sealpost.dev/sa/dispatch',
    'spiffe://sealpost.dev/dispatch?x=1',
    'spiffe://sealpost.dev/dispatch#frag',
    'spiffe://user@sealpost.dev/dispatch',
    'spiffe://sealpost.dev:443/dispatch',
    'SPIFFE://sealpost.dev/dispatch',
    'https://sealpost.dev/dispatch',
    'spiffe://sealpost.dev/Dispatch',
  ])('refuses %s', (uri) => expect(parseSpiffeId(uri)).toBeUndefined());
});

describe('serviceIdentityFromPeer', () => {
  it('returns the service principal of the verified certificate', () => {
    expect(
      serviceIdentityFromPeer(callWith('URI:spiffe://sealpost.dev/dispatch, DNS:localhost'), 'sealpost.dev'),
    ).toEqual({
      kind: 'service',
      service: 'dispatch',
      trustDomain: 'sealpost.dev',
      spiffeId: 'spiffe://sealpost.dev/dispatch',
    });
  });

  it('accepts the Kubernetes form only from the configured namespace', () => {
    const call = callWith('URI:spiffe://prod.example.com/ns/sealpost/sa/dispatch');
    expect(serviceIdentityFromPeer(call, 'prod.example.com', 'sealpost')).toEqual({
      kind: 'service',
      service: 'dispatch',
      trustDomain: 'prod.example.com',
      spiffeId: 'spiffe://prod.example.com/ns/sealpost/sa/dispatch',
    });
    // A service account named "dispatch" in another namespace is not the dispatch service.
    for (const namespace of ['other', undefined]) {
      expect(() => serviceIdentityFromPeer(call, 'prod.example.com', namespace)).toThrow(
        expect.objectContaining({ code: 'UNAUTHENTICATED', reason: 'NAMESPACE_MISMATCH' }),
      );
    }
  });

  it.each([
    ['no certificate', callWith(undefined), 'PEER_CERT_MISSING'],
    ['not TLS', callWith('URI:spiffe://sealpost.dev/dispatch', ''), 'PEER_CERT_MISSING'],
    ['no SPIFFE id', callWith('DNS:localhost'), 'PEER_IDENTITY_INVALID'],
    [
      'two SPIFFE ids',
      callWith('URI:spiffe://sealpost.dev/dispatch, URI:spiffe://sealpost.dev/audit'),
      'PEER_IDENTITY_INVALID',
    ],
    ['another trust domain', callWith('URI:spiffe://evil.example/dispatch'), 'TRUST_DOMAIN_MISMATCH'],
  ])('refuses %s with UNAUTHENTICATED', (_name, call, reason) => {
    expect(() => serviceIdentityFromPeer(call, 'sealpost.dev')).toThrow(
      expect.objectContaining({ code: 'UNAUTHENTICATED', reason }),
    );
  });
});
