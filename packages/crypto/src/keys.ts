import type { KeyObject } from 'node:crypto';

/** A tenant key-encryption key in plaintext (held only in memory, from the key cache). */
export interface TenantKek {
  readonly tenantId: string;
  readonly version: number;
  readonly key: KeyObject;
}

/**
 * A per-contact data key in plaintext. `dataKeyId` is 16 random bytes, base64url. A Buffer, not a
 * KeyObject: it lives for one operation and is zeroed afterwards (`ContactCipher` does so).
 */
export interface DataKey {
  readonly dataKeyId: string;
  readonly key: Buffer;
}

/** A data key wrapped by a tenant KEK, as kept in the key store (never beside the record). */
export interface WrappedDataKey {
  dataKeyId: string;
  kekVersion: number;
  /** [0x01][nonce 12][tag 16][ciphertext 32], see `wrapDataKey`. */
  wrapped: Uint8Array;
}
