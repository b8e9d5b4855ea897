import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import type { PublicJwk } from './jws-signer';

/**
 * Verifies a compact JWS (EdDSA or ES256) against the key whose `kid` its header names, checking `typ`, and
 * returns the decoded header and payload bytes. Throws on an unknown kid, an alg/key mismatch or a bad signature.
 */
export function verifyCompactJws(
  jws: string,
  keys: readonly PublicJwk[],
  expected: { typ: string },
): { header: { alg: string; kid: string; typ: string }; payload: Buffer } {
  const parts = jws.split('.');
  const [h, body, signature] = parts;
  if (parts.length !== 3 || !h || !body || !signature) throw new Error('not a compact JWS');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg: string; kid: string; typ: string };
  if (header.typ !== expected.typ) throw new Error('JWS typ is not the expected one');
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error('JWS kid is not a known key');
  if (header.alg !== jwk.alg) throw new Error('JWS alg does not match its key');
  const key = createPublicKey({ key: { ...jwk } as JsonWebKey, format: 'jwk' });
  const input = Buffer.from(`${h}.${body}`, 'ascii');
  const sig = Buffer.from(signature, 'base64url');
  const ok =
    jwk.alg === 'EdDSA'
      ? verify(null, input, key, sig)
      : verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig);
  if (!ok) throw new Error('JWS signature does not verify');
  return { header, payload: Buffer.from(body, 'base64url') };
}
