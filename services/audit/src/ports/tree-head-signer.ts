import type { JWK } from 'jose';

/** Signs tree-head payloads as compact JWS. Implementations: local Ed25519 (embedded), AWS KMS ES256 (production). */
export interface TreeHeadSigner {
  /** Key id carried in the JWS header; a rotated key gets a new kid. */
  readonly kid: string;
  readonly alg: 'EdDSA' | 'ES256';
  /** Compact JWS (protected header {alg, kid, typ}) over `payload`. */
  sign(payload: Uint8Array): Promise<string>;
  /** The public key as a JWK (with `kid` and `alg`), for verifiers. */
  publicJwk(): Promise<JWK>;
}

/** JWS `typ` of signed tree heads. */
export const TREE_HEAD_JWS_TYPE = 'sealpost-sth+jws';
