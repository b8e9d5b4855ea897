import { StorageError } from './errors';

/** What every migration list entry has, whatever the store. */
export interface MigrationHeader {
  /** Positive integer; versions are applied in increasing order and never reused. */
  readonly version: number;
  /** Short human label, recorded next to the version. */
  readonly name: string;
}

/**
 * Checks a migration list (positive, unique, increasing versions) and returns the highest version.
 * @throws StorageError STORAGE_MIGRATION_INVALID
 */
export function validateMigrations(migrations: readonly MigrationHeader[]): number {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version < 1) {
      throw new StorageError(
        'STORAGE_MIGRATION_INVALID',
        `migration version ${String(m.version)} is not a positive integer`,
      );
    }
    if (m.version <= last) {
      throw new StorageError(
        'STORAGE_MIGRATION_INVALID',
        `migration versions must be unique and increasing: ${m.version} follows ${last}`,
      );
    }
    if (typeof m.name !== 'string' || m.name.trim() === '') {
      throw new StorageError('STORAGE_MIGRATION_INVALID', `migration ${m.version} has no name`);
    }
    last = m.version;
  }
  return last;
}

/**
 * Refuses a database that has been migrated further than this code knows: running old code against a newer
 * schema can corrupt data silently, so the service must not start.
 * @throws StorageError STORAGE_MIGRATION_NEWER
 */
export function refuseNewerDatabase(where: string, dbVersion: number, codeVersion: number): void {
  if (dbVersion > codeVersion) {
    throw new StorageError(
      'STORAGE_MIGRATION_NEWER',
      `${where} is at migration version ${dbVersion} but this code knows only up to ${codeVersion}; ` +
        'refusing to start (deploy a build that knows the newer migrations, or restore the database)',
    );
  }
}
