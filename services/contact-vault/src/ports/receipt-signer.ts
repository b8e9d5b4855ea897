import type { JwsAlg, PublicJwk } from '@sealpost/crypto';

/** Signs receipts (erasure) as compact JWS; production keys live in KMS (ES256), embedded mode uses local Ed25519. */
export interface ReceiptSigner {
  /** Key id carried in the JWS header (`kid`). */
  readonly kid: string;
  readonly alg: JwsAlg;
  /** Public key as a JWK, for verifiers. */
  readonly publicJwk: PublicJwk;
  /** Compact JWS (`typ` given; a signer refuses any typ but its own) over the JSON payload. */
  sign(payload: object, typ: string): Promise<string>;
}
