import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StorageError } from '../errors';
import { type MigrationHeader, refuseNewerDatabase, validateMigrations } from '../migration-plan';

export type SqliteDatabase = Database.Database;

/** One schema step. `up` is SQL text or a synchronous function; it runs inside the migration's transaction. */
export interface SqliteMigration extends MigrationHeader {
  readonly up: string | ((db: SqliteDatabase) => void);
}

export interface OpenSqliteOptions {
  readonly migrations: readonly SqliteMigration[];
  /** How long a statement waits for another connection's write lock before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number;
}

/** The SQLite file of one service under the data directory (one file per service, never shared). */
export function sqliteFileFor(dataDir: string, service: string): string {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(service)) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `service name '${service}' must be kebab-case [a-z0-9-]`);
  }
  return path.join(dataDir, `${service}.sqlite`);
}

/**
 * Opens (creating if needed, mode 0600 in a 0700 directory) a service's SQLite file with durable settings and
 * applies pending migrations, one transaction each.
 * @throws StorageError STORAGE_MIGRATION_NEWER when the file was migrated by newer code; STORAGE_MIGRATION_FAILED
 */
export function openSqlite(file: string, options: OpenSqliteOptions): SqliteDatabase {
  const codeVersion = validateMigrations(options.migrations);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Create the file ourselves so it is never world-readable, not even for the moment before a chmod.
  fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600));
  // An existing file keeps its old mode under O_CREAT; tighten it (SQLite gives -wal/-shm the same mode).
  fs.chmodSync(file, 0o600);

  const db = new Database(file);
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new StorageError('STORAGE_UNAVAILABLE', `SQLite file ${file} refused WAL mode (got ${String(mode)})`);
    }
    // FULL, not NORMAL: in WAL mode NORMAL may drop the last acknowledged commits on power loss. Callers ack bus
    // messages and answer clients after a commit (consent, audit, outbox), so a commit must survive a crash.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    applySqliteMigrations(db, file, options.migrations, codeVersion);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function applySqliteMigrations(
  db: SqliteDatabase,
  file: string,
  migrations: readonly SqliteMigration[],
  codeVersion: number,
): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const maxApplied = db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM _migrations').pluck();
  const isApplied = db.prepare('SELECT 1 FROM _migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)');
  refuseNewerDatabase(`SQLite file ${file}`, maxApplied.get() as number, codeVersion);

  for (const m of migrations) {
    const step = db.transaction(() => {
      // Re-checked inside the write lock: another process opening the same file may have applied it meanwhile.
      if (isApplied.get(m.version) !== undefined) return;
      if (typeof m.up === 'string') {
        db.exec(m.up);
      } else {
        const result: unknown = m.up(db);
        if (result instanceof Promise) {
          // The transaction would commit before the promise settles, so async steps are a programming error.
          throw new StorageError(
            'STORAGE_MIGRATION_INVALID',
            `migration ${m.version} returned a promise; it must be synchronous`,
          );
        }
      }
      record.run(m.version, m.name, Date.now());
    });
    try {
      // IMMEDIATE takes the write lock before reading, so two processes cannot both decide to apply a step.
      step.immediate();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError(
        'STORAGE_MIGRATION_FAILED',
        `SQLite migration ${m.version} (${m.name}) failed on ${file}; nothing of it was applied`,
        { cause: err },
      );
    }
  }
  refuseNewerDatabase(`SQLite file ${file}`, maxApplied.get() as number, codeVersion);
}
