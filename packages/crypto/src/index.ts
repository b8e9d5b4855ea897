/**
 * @sealpost/crypto — the contact vault's cryptographic core: KMS port and adapters, the tenant key
 * hierarchy, per-contact data keys, record encryption, blind indexes, normalisation and masking.
 */
export {
  CryptoError,
  DecryptionError,
  DevModeRefusedError,
  InvalidFieldError,
  KeyNotFoundError,
  KeyringError,
  KmsAccessDeniedError,
  KmsUnavailableError,
  type KmsUnavailableReason,
  type ValidatedField,
} from './errors';
export {
  assertIdOnlyContext,
  canonicalContext,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyManagementService,
} from './kms/key-management-service';
export { AwsKms, mapKmsError, type AwsKmsOptions } from './kms/aws-kms';
export { LocalKeyring } from './kms/local-keyring';
export { createKeyManagementService, type KmsSettings } from './kms/create-kms';
export { CountingKms } from './kms/counting-kms';
export { MeteredKms } from './kms/metered-kms';
export { KeyCache, type KeyCacheOptions, type KeyCacheStats } from './key-cache';
export {
  InMemoryTenantKeyStore,
  KeyHierarchy,
  kmsContext,
  kmsKeyIdResolver,
  type KeyHierarchyOptions,
  type KeyHierarchyStats,
  type TenantKeyPurpose,
  type TenantKeyStore,
  type WrappedTenantKey,
} from './key-hierarchy';
export type { DataKey, TenantKek, WrappedDataKey } from './keys';
export {
  DATA_KEY_ID_BYTES,
  InMemoryDataKeyStore,
  generateDataKey,
  unwrapDataKey,
  wrapDataKey,
  type DataKeyStore,
} from './data-key';
export {
  RECORD_FORMAT_VERSION,
  openRecord,
  readRecordHeader,
  sealRecord,
  type RecordBinding,
  type RecordHeader,
  type AesKey,
  type RecordKey,
} from './record-cipher';
export { ContactCipher, sealNewContact, type RewrapOutcome, type SealedNewContact } from './contact-cipher';
export {
  BLIND_INDEX_FIELD_KINDS,
  BLIND_INDEX_HKDF_SALT,
  blindIndex,
  blindIndexInfo,
  computeBlindIndexes,
  deriveBlindIndexKeys,
  suppressionHash,
  type BlindIndex,
  type BlindIndexFieldKind,
  type BlindIndexKeys,
  type SuppressionHash,
  type SuppressionKey,
} from './blind-index';
export {
  NORM_VERSION,
  normalizeContactFields,
  normalizeEmail,
  normalizePhone,
  type NormalizationPolicy,
  type NormalizedContactFields,
  type NormalizedEmail,
  type NormalizedPhone,
} from './normalize';
export { maskEmail, maskPhone } from './mask';
export {
  derToJoseSignature,
  jwkThumbprint,
  jwsSigningInput,
  type JwsAlg,
  type JwsSigner,
  type PublicJwk,
} from './jws/jws-signer';
export { LocalEd25519JwsSigner } from './jws/local-ed25519-jws-signer';
export { KmsEs256JwsSigner } from './jws/kms-es256-jws-signer';
export { verifyCompactJws } from './jws/verify-jws';
export { RandomPool, randomPool } from './random-pool';
