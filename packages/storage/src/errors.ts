/** Stable codes for storage failures; callers branch on `code`, never on the message. */
export type StorageErrorCode =
  | 'STORAGE_UNAVAILABLE'
  | 'STORAGE_AUTH_FAILED'
  | 'STORAGE_INVALID_ARGUMENT'
  | 'STORAGE_INDEX_CONFLICT'
  | 'STORAGE_MIGRATION_INVALID'
  | 'STORAGE_MIGRATION_NEWER'
  | 'STORAGE_MIGRATION_FAILED'
  | 'STORAGE_MIGRATION_STUCK'
  | 'STORAGE_USER_UNSUPPORTED'
  | 'STORAGE_CONTENDED';

/** A storage failure with a stable `code`. Messages name hosts, files and versions — never credentials or data. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `err` is a StorageError, optionally with the given code. */
export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}
