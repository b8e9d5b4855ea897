export { StorageError, isStorageError, type StorageErrorCode } from './errors';
export type { MigrationHeader } from './migration-plan';

export {
  connectMongo,
  mongoHostsOf,
  MONGO_DURABILITY,
  type ConnectMongoOptions,
  type MongoHandle,
  type MongoTlsOptions,
} from './mongo/connect-mongo';
export { ensureIndexes, type CollectionIndexes, type IndexSpec } from './mongo/indexes';
export {
  runMongoMigrations,
  mongoSchemaVersion,
  type MongoMigration,
  type MigrationReport,
  type RunMongoMigrationsOptions,
} from './mongo/migrations';
export { ensureServiceUser, type ServiceUserResult } from './mongo/service-user';

export {
  openSqlite,
  sqliteFileFor,
  type OpenSqliteOptions,
  type SqliteDatabase,
  type SqliteMigration,
} from './sqlite/open-sqlite';

export type { LeaseGrant, LeaseStore } from './lease';
export type { LeaseStoreOptions } from './lease-args';
export { MongoLeaseStore } from './lease-mongo';
export { SqliteLeaseStore } from './lease-sqlite';
export { LeaseKeeper, newLeaseHolderId, type LeaseKeeperOptions, type LeaseLossReason } from './lease-keeper';

export type {
  IdempotencyClaim,
  IdempotencyClaimOptions,
  IdempotencyClaimResult,
  IdempotencyStore,
  IdempotencyStoreOptions,
} from './idempotency-store';
export { MemoryIdempotencyStore, type MemoryIdempotencyStoreOptions } from './idempotency-memory';
export { SqliteIdempotencyStore } from './idempotency-sqlite';
export { MongoIdempotencyStore, type MongoIdempotencyStoreOptions } from './idempotency-mongo';

export {
  WINDOW_SLICES,
  takeFromWindow,
  type WindowRule,
  type WindowSlice,
  type WindowedCounterStore,
  type WindowedCounterStoreOptions,
  type WindowedTake,
} from './windowed-counter';
export { MemoryWindowedCounterStore } from './windowed-counter-memory';
export { SqliteWindowedCounterStore } from './windowed-counter-sqlite';
export { WalCheckpointer, type WalCheckpointerOptions } from './sqlite/wal-checkpointer';
export { MongoWindowedCounterStore, type MongoWindowedCounterStoreOptions } from './windowed-counter-mongo';
