import { type Db, MongoClient, type MongoClientOptions, MongoServerError } from 'mongodb';
import { StorageError } from '../errors';

export interface MongoTlsOptions {
  /** PEM file of the CA that signs the server certificate. */
  readonly caFile?: string;
  /** PEM file holding this client's certificate and key (for x.509 / mTLS to the server). */
  readonly certificateKeyFile?: string;
}

export interface ConnectMongoOptions {
  /** mongodb:// or mongodb+srv:// URL; may carry credentials, which never appear in errors. */
  readonly url: string;
  /** The service's own database; no service reads another's. */
  readonly database: string;
  /** Shown in server logs and currentOp, e.g. the service name. */
  readonly appName: string;
  /** Enables TLS with these files; omit to follow the URL's own `tls=` setting. */
  readonly tls?: MongoTlsOptions;
  /** How long to wait for a usable server before giving up (default 10000 ms). */
  readonly serverSelectionTimeoutMs?: number;
}

/** An open connection to one service database. */
export interface MongoHandle {
  readonly client: MongoClient;
  readonly db: Db;
  /** Waits for in-flight operations and closes every pooled connection; safe to call twice. */
  close(): Promise<void>;
}

/** Durability defaults for every service: acknowledged writes are on a majority, journaled; reads see only those. */
export const MONGO_DURABILITY: Readonly<MongoClientOptions> = Object.freeze({
  writeConcern: { w: 'majority' as const, journal: true },
  readConcern: { level: 'majority' as const },
  retryWrites: true,
  retryReads: true,
} satisfies MongoClientOptions);

/**
 * Connects and proves the server answers (a ping) before returning.
 * @throws StorageError STORAGE_UNAVAILABLE (unreachable within the timeout), STORAGE_AUTH_FAILED
 */
export async function connectMongo(options: ConnectMongoOptions): Promise<MongoHandle> {
  const where = mongoHostsOf(options.url);
  const timeoutMs = options.serverSelectionTimeoutMs ?? 10_000;
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(options.database)) {
    throw new StorageError(
      'STORAGE_INVALID_ARGUMENT',
      `database name '${options.database}' must match [A-Za-z0-9_-]{1,63}`,
    );
  }
  let client: MongoClient;
  try {
    client = new MongoClient(options.url, {
      ...MONGO_DURABILITY,
      appName: options.appName,
      serverSelectionTimeoutMS: timeoutMs,
      connectTimeoutMS: Math.min(timeoutMs, 10_000),
      ...(options.tls
        ? {
            tls: true,
            ...(options.tls.caFile ? { tlsCAFile: options.tls.caFile } : {}),
            ...(options.tls.certificateKeyFile ? { tlsCertificateKeyFile: options.tls.certificateKeyFile } : {}),
          }
        : {}),
    });
  } catch (err) {
    // The driver's parse errors can quote the URL, credentials included, so the cause is deliberately dropped.
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `MongoDB URL for ${where} is invalid (${errorName(err)})`);
  }
  try {
    await client.connect();
    await client.db(options.database).command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => undefined);
    if (err instanceof MongoServerError && (err.code === 18 || err.codeName === 'AuthenticationFailed')) {
      throw new StorageError('STORAGE_AUTH_FAILED', `MongoDB at ${where} rejected the credentials`, { cause: err });
    }
    throw new StorageError('STORAGE_UNAVAILABLE', `MongoDB at ${where} unreachable within ${timeoutMs} ms`, {
      cause: err,
    });
  }
  const db = client.db(options.database);
  let closing: Promise<void> | undefined;
  return {
    client,
    db,
    close: () => (closing ??= client.close()),
  };
}

/** The host:port list of a MongoDB URL with scheme, credentials, path and options removed — safe for messages. */
export function mongoHostsOf(url: string): string {
  const scheme = /^mongodb(?:\+srv)?:\/\//i.exec(url);
  if (!scheme) return '<unparseable MongoDB URL>';
  let rest = url.slice(scheme[0].length);
  // The LAST '@' ends the credentials: a careless unencoded '/' or '@' in a password must not leak.
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  const hosts = /^[^/?#]*/.exec(rest)?.[0];
  return hosts ? hosts : '<unparseable MongoDB URL>';
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'error';
}
