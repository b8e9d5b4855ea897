import { TREE_HEAD_JWS_TYPE } from '../../ports/tree-head-signer';

/** The compact-JWS signing input: base64url(header) '.' base64url(payload). */
export function jwsSigningInput(alg: string, kid: string, payload: Uint8Array): string {
  const header = Buffer.from(JSON.stringify({ alg, kid, typ: TREE_HEAD_JWS_TYPE }), 'utf8').toString('base64url');
  return `${header}.${Buffer.from(payload).toString('base64url')}`;
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
