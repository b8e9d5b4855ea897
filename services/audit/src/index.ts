/**
 * Public API of the audit service package. The log's formats and their verification (entries, Merkle proofs, tree
 * heads, the audit-event mapping, the inclusion-proof file) are @sealpost/audit-format's: import them from there.
 */
export * from './domain';
export * from './ports/audit-log-store';
export * from './ports/tree-head-signer';
export * from './ports/witness';
export { SqliteAuditLogStore, AUDIT_SQLITE_MIGRATIONS } from './adapters/sqlite/sqlite-audit-log-store';
export { MongoAuditLogStore } from './adapters/mongo/mongo-audit-log-store';
export { LocalEd25519Signer } from './adapters/signing/local-ed25519-signer';
export { KmsEs256Signer } from './adapters/signing/kms-es256-signer';
export { FileWitness, readTreeHeadFile } from './adapters/witness/file-witness';
export { openAuditLogStore } from './adapters/open-audit-store';
export {
  AuditVerifyError,
  proveEntry,
  pruneAuditLog,
  verifyAuditLog,
  type AuditLogProblem,
  type AuditVerifyErrorCode,
  type AuditVerifyFailure,
  type AuditVerifyResult,
  type AuditVerifySuccess,
  type ProveEntryOptions,
  type PruneAuditLogOptions,
  type PruneAuditLogResult,
  type PublicKeys,
  type VerifyAuditLogOptions,
  type VerifyProgress,
} from './app/verify';
export {
  AUDIT_APPENDER_DURABLE,
  AUDIT_APPENDER_LEASE,
  AuditAppender,
  FencedLogWriter,
  NotLeaderError,
  type AuditAppenderOptions,
} from './app/append-entries';
export { RetentionSchedule, type RetentionScheduleOptions } from './app/retention-schedule';
export {
  TreeHeadSchedule,
  signTreeHead,
  type SignTreeHeadDeps,
  type TreeHeadPublisher,
  type TreeHeadScheduleOptions,
} from './app/sign-tree-head';
export {
  DEFAULT_QUERY_PAGE_SIZE,
  MAX_ENTRIES_PER_CALL,
  createAuditLogHandlers,
  type AuditLogHandlerDeps,
} from './adapters/grpc/audit-log-handlers';
export {
  AUDIT_LOG_ID,
  AuditServiceError,
  TREE_HEAD_EVENT_TYPE,
  treeHeadPublisher,
  startAuditService,
  type AuditServiceErrorCode,
  type AuditServiceOptions,
  type RunningAuditService,
} from './service';
export { AuditMetrics, type AppendOutcome } from './app/audit-metrics';
