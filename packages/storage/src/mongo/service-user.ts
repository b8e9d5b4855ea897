import { type Db, MongoServerError } from 'mongodb';
import { StorageError } from '../errors';

export type ServiceUserResult =
  | { readonly status: 'created' | 'updated'; readonly user: string }
  /** The server has no user management (FerretDB v1 without its new-auth mode): isolation must come from elsewhere. */
  | { readonly status: 'unsupported'; readonly user: string; readonly reason: string };

// Server answers meaning "this command does not exist / is not implemented here".
const UNSUPPORTED_CODES = new Set([59 /* CommandNotFound */, 115 /* CommandNotSupported */, 238 /* NotImplemented */]);

/**
 * Creates or updates the service's own user, defined in `adminDb`, with `readWrite` on `database` only.
 * Returns `unsupported` (never a silent success) when the server lacks createUser/updateUser, as FerretDB v1
 * may; the caller decides whether that is acceptable (dev/CI) or fatal (production).
 * @throws StorageError STORAGE_INVALID_ARGUMENT for a bad name or a short password
 */
export async function ensureServiceUser(
  adminDb: Db,
  service: string,
  password: string,
  database: string,
): Promise<ServiceUserResult> {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(service)) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `service name '${service}' must be kebab-case [a-z0-9-]`);
  }
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(database)) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `database name '${database}' must match [A-Za-z0-9_-]{1,63}`);
  }
  if (typeof password !== 'string' || password.length < 16) {
    // The password itself is never echoed.
    throw new StorageError(
      'STORAGE_INVALID_ARGUMENT',
      `password for service user '${service}' is shorter than 16 characters`,
    );
  }
  const roles = [{ role: 'readWrite', db: database }];
  try {
    await adminDb.command({ createUser: service, pwd: password, roles });
    return { status: 'created', user: service };
  } catch (err) {
    const unsupported = unsupportedReason(err);
    if (unsupported) return { status: 'unsupported', user: service, reason: unsupported };
    if (!(err instanceof MongoServerError && (err.code === 51003 || err.code === 11000))) throw err;
  }
  // Already exists: reset password and roles so a rotated secret or a widened grant is brought back in line.
  try {
    await adminDb.command({ updateUser: service, pwd: password, roles });
    return { status: 'updated', user: service };
  } catch (err) {
    const unsupported = unsupportedReason(err);
    if (unsupported) return { status: 'unsupported', user: service, reason: unsupported };
    throw err;
  }
}

function unsupportedReason(err: unknown): string | undefined {
  if (!(err instanceof MongoServerError)) return undefined;
  if (typeof err.code === 'number' && UNSUPPORTED_CODES.has(err.code)) {
    return `server does not support user management (${err.codeName ?? err.code})`;
  }
  return undefined;
}
