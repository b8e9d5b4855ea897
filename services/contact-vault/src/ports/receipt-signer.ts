/** Signs receipts (erasure) as compact JWS; production keys live in KMS, embedded mode uses a local Ed25519 key. */
export interface ReceiptSigner {
  /** Key id carried in the JWS header (`kid`). */
  readonly kid: string;
  /** Public key as a JWK, for verifiers. */
  readonly publicJwk: Readonly<Record<string, string>>;
  /** Compact JWS (`alg` EdDSA, `typ` given) over the JSON payload. */
  sign(payload: object, typ: string): Promise<string>;
}
