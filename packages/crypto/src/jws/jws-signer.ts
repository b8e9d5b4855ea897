import { createHash } from 'node:crypto';

/** JWS algorithms Sealpost signs with: Ed25519 (embedded, local key) and ES256 (production, KMS-held P-256 key). */
export type JwsAlg = 'EdDSA' | 'ES256';

/** A public signing key as a JWK, with the `kid` that signed JWS headers carry. */
export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly y?: string;
  readonly kid: string;
  readonly alg: JwsAlg;
  readonly use: 'sig';
}

/** Signs payloads as compact JWS (protected header {alg, kid, typ}); `typ` is fixed per signer instance. */
export interface JwsSigner {
  /** Key id carried in the JWS header; a rotated key gets a new kid. */
  readonly kid: string;
  readonly alg: JwsAlg;
  /** Compact JWS over `payload`. */
  sign(payload: Uint8Array): Promise<string>;
  /** The public key as a JWK (with `kid` and `alg`), for verifiers. */
  publicJwk(): Promise<PublicJwk>;
}

/** The compact-JWS signing input: base64url(header) '.' base64url(payload). */
export function jwsSigningInput(header: { alg: JwsAlg; kid: string; typ: string }, payload: Uint8Array): string {
  // Fixed member order, so equal inputs give byte-equal headers.
  const h = { alg: header.alg, kid: header.kid, typ: header.typ };
  return `${Buffer.from(JSON.stringify(h), 'utf8').toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an OKP or EC public JWK. */
export function jwkThumbprint(jwk: { kty?: string; crv?: string; x?: string; y?: string }): string {
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === 'OKP'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
        : undefined;
  if (!members || Object.values(members).some((v) => typeof v !== 'string')) {
    throw new Error('JWK thumbprint needs an OKP or EC public key');
  }
  return createHash('sha256').update(JSON.stringify(members), 'utf8').digest('base64url');
}

/**
 * DER ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }, as KMS returns it) → JOSE raw r‖s, each left-padded
 * to `size` bytes (32 for P-256). Throws on anything that is not such a DER structure.
 */
export function derToJoseSignature(der: Uint8Array, size = 32): Buffer {
  const b = Buffer.from(der);
  let at = 0;
  const fail = (): never => {
    throw new Error('signature is not a DER ECDSA signature');
  };
  if (b[at++] !== 0x30) fail();
  let len = b[at++] ?? fail();
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n !== 1) fail();
    len = b[at++] ?? fail();
  }
  if (len !== b.length - at) fail();
  const int = (): Buffer => {
    if (b[at++] !== 0x02) fail();
    const l = b[at++] ?? fail();
    if (l < 1 || at + l > b.length) fail();
    let v = b.subarray(at, at + l);
    at += l;
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > size) fail();
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  const r = int();
  const s = int();
  if (at !== b.length) fail();
  return Buffer.concat([r, s]);
}
