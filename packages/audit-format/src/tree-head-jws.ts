/**
 * Checking a signed tree head: a compact JWS (EdDSA or ES256, typ TREE_HEAD_JWS_TYPE) over the canonical payload of
 * tree-head.ts. Only verification lives here — signing needs a private key and stays with the audit service — so a
 * party holding the audit's public keys (the contact vault, the CLI, an auditor's tool) checks heads with this module
 * alone.
 */
import { type JWK, compactVerify, importJWK } from 'jose';
import { type TreeHead, parseTreeHeadPayload } from './tree-head';

/** JWS `typ` of signed tree heads. */
export const TREE_HEAD_JWS_TYPE = 'sealpost-sth+jws';

/** A tree head with its signature: the fields exactly as `jws` signs them, and the signing key's id. */
export interface SignedTreeHead extends TreeHead {
  /** Compact JWS over `encodeTreeHeadPayload` of the other fields. */
  readonly jws: string;
  readonly kid: string;
}

export type TreeHeadCheckCode = 'STH_BAD_SIGNATURE' | 'STH_UNKNOWN_KID' | 'STH_PAYLOAD_MISMATCH';

/** A tree head's JWS did not verify. */
export class TreeHeadSignatureError extends Error {
  override readonly name = 'TreeHeadSignatureError';
  constructor(
    readonly code: TreeHeadCheckCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Verifies a head's JWS with the public key of its kid (EdDSA or ES256, typ pinned) and that the signed payload is
 * exactly the head's fields. Returns the signed TreeHead; throws TreeHeadSignatureError.
 */
export async function verifyTreeHeadJws(head: SignedTreeHead, publicKeys: readonly JWK[]): Promise<TreeHead> {
  const jwk = publicKeys.find((k) => k.kid === head.kid);
  if (!jwk) throw new TreeHeadSignatureError('STH_UNKNOWN_KID', `no public key for the head's kid`);
  const alg = jwk.alg === 'ES256' ? 'ES256' : 'EdDSA';
  let payload: Uint8Array;
  try {
    const key = await importJWK(jwk, alg);
    const out = await compactVerify(head.jws, key, { algorithms: [alg] });
    if (out.protectedHeader.kid !== head.kid || out.protectedHeader.typ !== TREE_HEAD_JWS_TYPE) {
      throw new Error('header kid/typ mismatch');
    }
    payload = out.payload;
  } catch (cause) {
    throw new TreeHeadSignatureError('STH_BAD_SIGNATURE', `tree head of size ${head.treeSize}: bad signature`, {
      cause,
    });
  }
  let signed: TreeHead;
  try {
    signed = parseTreeHeadPayload(payload);
  } catch (cause) {
    throw new TreeHeadSignatureError('STH_PAYLOAD_MISMATCH', 'signed payload is not a canonical tree head', { cause });
  }
  if (
    signed.logId !== head.logId ||
    signed.treeSize !== head.treeSize ||
    signed.rootHash !== head.rootHash ||
    signed.timestamp !== head.timestamp
  ) {
    throw new TreeHeadSignatureError(
      'STH_PAYLOAD_MISMATCH',
      `tree head of size ${head.treeSize}: fields differ from the signed payload`,
    );
  }
  return signed;
}
