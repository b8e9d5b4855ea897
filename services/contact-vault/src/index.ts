/** Public API of the contact-vault service package. */
export * from './domain';
export * from './ports/contact-repository';
export * from './ports/index-entry-repository';
export * from './ports/audit-publisher';
export * from './ports/audit-proofs';
export * from './ports/tenant-policies';
export { upsertContact, type UpsertContactInput, type UpsertContactResult } from './app/upsert-contact';
export { getContact } from './app/get-contact';
export { listContacts, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type ListContactsResult } from './app/list-contacts';
export { findContacts, FIND_AUDIT_ACTION, type FindContactsInput, type FindContactsResult } from './app/find-contacts';
export {
  importContacts,
  type ImportOptions,
  type ImportRow,
  type ImportRowOutcome,
  type ImportRowResult,
} from './app/import-contacts';
export * from './ports/import-batch-writer';
export { SqliteImportBatchWriter } from './adapters/sqlite/sqlite-import-batch-writer';
export { CONTACT_UPSERTED, contactUpsertedEvent } from './app/contact-events';
export type { MaskedContactView } from './app/masked-contact';
export type { VaultDeps } from './app/vault-deps';
export { BusAuditPublisher, auditActionToken } from './adapters/bus/bus-audit-publisher';
export { StaticTenantPolicies } from './adapters/static-tenant-policies';
export { SqliteContactRepository } from './adapters/sqlite/sqlite-contact-repository';
export { SqliteIndexEntryRepository } from './adapters/sqlite/sqlite-index-entry-repository';
export { CONTACT_STORE_MIGRATIONS, openSqliteContactStore } from './adapters/sqlite/sqlite-contact-store';
export {
  KEY_STORE_FILE_NAME,
  KEY_STORE_MIGRATIONS,
  SqliteDataKeyStore,
  SqliteTenantKeyStore,
  openSqliteKeyStore,
} from './adapters/sqlite/sqlite-key-store';
export { MongoContactRepository } from './adapters/mongo/mongo-contact-repository';
export { MongoIndexEntryRepository } from './adapters/mongo/mongo-index-entry-repository';
export { CONTACT_STORE_INDEXES, ensureContactStore } from './adapters/mongo/mongo-contact-store';
export {
  MongoDataKeyStore,
  MongoTenantKeyStore,
  ensureKeyStore,
  keyStoreDatabaseOf,
} from './adapters/mongo/mongo-key-store';
export { createContactVaultHandlers, type ContactVaultHandlerDeps } from './adapters/grpc/contact-vault-handlers';
export { toAppError } from './adapters/grpc/error-mapping';
export {
  CONTACT_OUTBOX_LEASE,
  IDEMPOTENCY_TTL_MS,
  LOCAL_KMS_KEY_TEMPLATE,
  createVaultDeps,
  openVaultStores,
  startContactVaultService,
  type ContactVaultServiceOptions,
  type OpenedVaultStores,
  type RunningContactVaultService,
} from './service';
export { revealContact, REVEAL_AUDIT_ACTION, type StatedPurpose } from './app/reveal-contact';
export { exportContact, EXPORT_AUDIT_ACTION, EXPORT_FORMAT } from './app/export-contact';
export {
  resolveRecipients,
  RESOLVE_AUDIT_ACTION,
  DEFAULT_RESOLVE_BATCH,
  MAX_RESOLVE_BATCH,
  type ResolvedBatch,
} from './app/resolve-recipients';
export { startEraseContact, ERASE_AUDIT_ACTION, ERASURE_RECEIPT_TYP, type EraseDeps } from './app/erase-contact';
export {
  ERASURE_RECEIPT_FORMAT,
  receiptAuditProof,
  verifyErasureReceipt,
  type AuditPublicKeys,
  type ErasureReceipt,
  type ReceiptAuditProof,
  type ReceiptProblem,
  type ReceiptVerification,
} from './app/erasure-receipt';
export { GrpcAuditProofs, grpcAuditProofsOf, type GrpcAuditProofsOptions } from './adapters/grpc/grpc-audit-proofs';
export { OFFLINE_AUDIT_PROOFS } from './adapters/offline-audit-proofs';
export { reapplyErasureLedger, isSuppressed } from './app/erasure-ledger';
export { startRotateTenantKey, ROTATE_AUDIT_ACTION } from './app/rotate-tenant-key';
export { sweepRetention, type RetentionPolicy, type RetentionReport } from './app/sweep-retention';
export { openVerified } from './app/open-verified';
export * from './ports/erasure-repository';
export * from './ports/operation-repository';
export * from './ports/key-inventory';
export * from './ports/receipt-signer';
export {
  localReceiptPublicJwk,
  openLocalReceiptSigner,
  verifyReceipt,
  RECEIPT_KEY_FILE,
} from './adapters/signing/local-receipt-signer';
export {
  openKmsReceiptSigner,
  ReceiptSignerError,
  type KmsReceiptSignerOptions,
} from './adapters/signing/kms-receipt-signer';
export { jwsReceiptSigner } from './adapters/signing/jws-receipt-signer';
export { SqliteErasureRepository } from './adapters/sqlite/sqlite-erasure-repository';
export { SqliteOperationRepository } from './adapters/sqlite/sqlite-operation-repository';
export { SqliteKeyInventory } from './adapters/sqlite/sqlite-key-store';
export { MongoErasureRepository } from './adapters/mongo/mongo-erasure-repository';
export { MongoOperationRepository } from './adapters/mongo/mongo-operation-repository';
export { MongoKeyInventory } from './adapters/mongo/mongo-key-store';
export { openReceiptSigner, openVaultRuntime, tenantPoliciesOf, vaultQuotasOf, type VaultRuntime } from './service';
