/**
 * The KMS port: the only way the crypto core reaches a key it does not hold. Adapters: `AwsKms` (AWS KMS
 * or an API-compatible emulator) and `LocalKeyring` (embedded mode only).
 */

/**
 * KMS encryption context: ids and codes only (tenant id, purpose, version). It is logged by AWS CloudTrail
 * in clear, so it must never hold personal data; `assertIdOnlyContext` enforces a conservative alphabet.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

/** Wraps and unwraps small secrets (tenant keys) under a KMS key, bound to an encryption context. */
export interface KeyManagementService {
  /**
   * Encrypts `plaintext` (≤ 4 KiB) under `keyId`, binding `context`. Throws `KmsUnavailableError`
   * or `KmsAccessDeniedError`.
   */
  encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array>;
  /**
   * Decrypts a blob made by `encrypt` with the same key and exactly the same context. Throws
   * `KmsAccessDeniedError` (code KMS_DECRYPT_REFUSED) on any mismatch, `KmsUnavailableError` on outage.
   */
  decrypt(keyId: string, ciphertextBlob: Uint8Array, context: EncryptionContext): Promise<Uint8Array>;
  /** Optional: a fresh random 256-bit key and its wrapped form in one call. */
  generateDataKey?(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey>;
}

/** Result of `KeyManagementService.generateDataKey`. */
export interface GeneratedDataKey {
  plaintext: Uint8Array;
  ciphertextBlob: Uint8Array;
}

const CONTEXT_KEY = /^[a-z][a-zA-Z0-9_-]{0,31}$/;
// Ids are uuids, ulids, slugs or small integers; '@', '+' and spaces are excluded so an email address or a
// phone number put here by mistake is refused instead of leaking into KMS audit logs.
const CONTEXT_VALUE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Throws a TypeError (a programming error, not user input) when the context is not ids and codes only. */
export function assertIdOnlyContext(context: EncryptionContext): void {
  const entries = Object.entries(context);
  if (entries.length === 0 || entries.length > 8) {
    throw new TypeError('KMS encryption context must hold 1..8 entries');
  }
  for (const [key, value] of entries) {
    if (!CONTEXT_KEY.test(key) || typeof value !== 'string' || !CONTEXT_VALUE.test(value)) {
      throw new TypeError('KMS encryption context holds ids and codes only (a-z, 0-9, ".", "_", ":", "-")');
    }
  }
}

/** Canonical JSON of the context with keys sorted, the form bound as AAD by `LocalKeyring`. */
export function canonicalContext(context: EncryptionContext): string {
  // Built by hand: JSON.stringify would move integer-like keys first, whatever order they were sorted in.
  const members = Object.keys(context)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${JSON.stringify(context[key])}`);
  return `{${members.join(',')}}`;
}
