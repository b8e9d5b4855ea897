import { type Db, MongoServerError } from 'mongodb';
import { StorageError } from '../errors';
import { type MigrationHeader, refuseNewerDatabase, validateMigrations } from '../migration-plan';

/**
 * One schema/data step for a MongoDB database. FerretDB has no multi-document transactions, so a step that
 * crashes half-way is not rolled back: write steps so that running them again is harmless.
 */
export interface MongoMigration extends MigrationHeader {
  up(db: Db): Promise<void>;
}

export interface RunMongoMigrationsOptions {
  /** How long to wait for a step another replica is running before giving up (default 60000 ms). */
  readonly waitForOthersMs?: number;
}

export interface MigrationReport {
  /** Versions this call applied, in order. */
  readonly applied: number[];
  /** Highest version applied to the database after this call. */
  readonly version: number;
}

interface MigrationRecord {
  _id: number;
  name: string;
  state: 'running' | 'applied';
  startedAt: Date;
  appliedAt?: Date;
}

const COLLECTION = '_migrations';

/**
 * Applies pending migrations in version order, each once, recording them in `_migrations`. Replicas starting
 * together are safe: a step is claimed by inserting its version as `_id`; the others wait for it to finish.
 * @throws StorageError STORAGE_MIGRATION_NEWER, STORAGE_MIGRATION_FAILED, STORAGE_MIGRATION_STUCK
 */
export async function runMongoMigrations(
  db: Db,
  migrations: readonly MongoMigration[],
  options: RunMongoMigrationsOptions = {},
): Promise<MigrationReport> {
  const codeVersion = validateMigrations(migrations);
  const records = db.collection<MigrationRecord>(COLLECTION);
  const where = `MongoDB database ${db.databaseName}`;
  refuseNewerDatabase(where, await highestVersion(db), codeVersion);

  const applied: number[] = [];
  for (const m of migrations) {
    const existing = await records.findOne({ _id: m.version });
    if (existing?.state === 'applied') continue;
    if (existing === null && (await claim(db, m))) {
      try {
        await m.up(db);
      } catch (err) {
        // Release the claim so a fixed build can retry; partial writes stay (no transactions), hence idempotent steps.
        await records.deleteOne({ _id: m.version, state: 'running' });
        throw new StorageError('STORAGE_MIGRATION_FAILED', `migration ${m.version} (${m.name}) failed on ${where}`, {
          cause: err,
        });
      }
      await records.updateOne({ _id: m.version }, { $set: { state: 'applied', appliedAt: new Date() } });
      applied.push(m.version);
      continue;
    }
    await waitForOther(db, m, options.waitForOthersMs ?? 60_000);
  }
  const version = await highestVersion(db);
  refuseNewerDatabase(where, version, codeVersion);
  return { applied, version };
}

/** The highest version recorded (running or applied) in `_migrations`, 0 for a fresh database. */
export async function mongoSchemaVersion(db: Db): Promise<number> {
  return highestVersion(db);
}

async function highestVersion(db: Db): Promise<number> {
  const top = await db
    .collection<MigrationRecord>(COLLECTION)
    .find({}, { projection: { _id: 1 } })
    .sort({ _id: -1 })
    .limit(1)
    .next();
  return top?._id ?? 0;
}

async function claim(db: Db, m: MongoMigration): Promise<boolean> {
  try {
    await db
      .collection<MigrationRecord>(COLLECTION)
      .insertOne({ _id: m.version, name: m.name, state: 'running', startedAt: new Date() });
    return true;
  } catch (err) {
    if (err instanceof MongoServerError && err.code === 11000) return false;
    throw err;
  }
}

async function waitForOther(db: Db, m: MongoMigration, waitMs: number): Promise<void> {
  const records = db.collection<MigrationRecord>(COLLECTION);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const record = await records.findOne({ _id: m.version });
    if (record?.state === 'applied') return;
    if (record === null) {
      // The other runner failed and released its claim; this build would fail the same way, so do not retry here.
      throw new StorageError(
        'STORAGE_MIGRATION_FAILED',
        `migration ${m.version} (${m.name}) on MongoDB database ${db.databaseName} failed in another instance`,
      );
    }
    if (Date.now() >= deadline) {
      throw new StorageError(
        'STORAGE_MIGRATION_STUCK',
        `migration ${m.version} (${m.name}) on MongoDB database ${db.databaseName} has been running since ` +
          `${record.startedAt.toISOString()}; if that instance died, check the step's effects and delete ` +
          `{_id: ${m.version}} from ${COLLECTION}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
