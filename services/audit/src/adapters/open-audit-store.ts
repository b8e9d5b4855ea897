import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreConfig } from '@sealpost/config';
import { connectMongo } from '@sealpost/storage';
import type { AuditLogStore } from '../ports/audit-log-store';
import { MongoAuditLogStore } from './mongo/mongo-audit-log-store';
import { SqliteAuditLogStore } from './sqlite/sqlite-audit-log-store';

/**
 * Opens the audit log store a configuration names (SQLite file or MongoDB/FerretDB), for tools such as
 * `sealpost audit verify`. `close()` releases the connection.
 */
export async function openAuditLogStore(config: StoreConfig, appName = 'sealpost-audit-tool'): Promise<AuditLogStore> {
  if (config.kind === 'sqlite') {
    mkdirSync(path.dirname(config.file), { recursive: true });
    return SqliteAuditLogStore.open(config.file);
  }
  let url = config.url;
  if (config.user !== undefined && config.passwordFile !== undefined) {
    const u = new URL(config.url);
    u.username = encodeURIComponent(config.user);
    u.password = encodeURIComponent((await readFile(config.passwordFile, 'utf8')).trim());
    url = u.toString();
  }
  const mongo = await connectMongo({ url, database: config.database, appName });
  try {
    return await MongoAuditLogStore.open(mongo.db, () => mongo.close());
  } catch (err) {
    await mongo.close();
    throw err;
  }
}
