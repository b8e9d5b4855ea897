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
