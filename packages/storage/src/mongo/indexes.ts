import { type Collection, type Db, type Document, MongoServerError } from 'mongodb';
import { StorageError } from '../errors';

/**
 * One index, declared as data. Deliberately no partial or sparse options: FerretDB v1 (the CI server) lacks
 * them. Uniqueness over an optional value is kept in separate index documents instead.
 */
export interface IndexSpec {
  /** Stable name; changing the keys or options of a named index is a conflict, not a silent rebuild. */
  readonly name: string;
  readonly key: Readonly<Record<string, 1 | -1>>;
  readonly unique?: boolean;
}

/** Indexes per collection name. */
export type CollectionIndexes = Readonly<Record<string, readonly IndexSpec[]>>;

/**
 * Creates the declared indexes (and their collections) at start-up; indexes that already exist as declared are
 * left alone, so it is idempotent.
 * @throws StorageError STORAGE_INDEX_CONFLICT when an index with the same name (or keys) but other options exists
 */
export async function ensureIndexes(db: Db, specs: CollectionIndexes): Promise<void> {
  for (const [collection, indexes] of Object.entries(specs)) {
    for (const spec of indexes) {
      if (Object.keys(spec.key).length === 0) {
        throw new StorageError('STORAGE_INVALID_ARGUMENT', `index ${collection}.${spec.name} has no keys`);
      }
    }
    const coll = db.collection(collection);
    const existing = await listIndexes(coll);
    for (const spec of indexes) {
      const found = existing.find((ix) => ix['name'] === spec.name);
      if (found) {
        checkSame(db, collection, spec, found);
        continue;
      }
      // One index per call, and only missing ones: FerretDB v1 crashes the connection when asked to re-create
      // several existing indexes in one createIndexes command.
      try {
        await coll.createIndexes([{ name: spec.name, key: { ...spec.key }, ...(spec.unique ? { unique: true } : {}) }]);
      } catch (err) {
        if (err instanceof MongoServerError) throw conflict(db, collection, spec, err);
        throw err;
      }
    }
    // Re-read: a replica starting at the same moment may have created a same-named index differently, and
    // FerretDB accepts a same-named index with other options without complaint.
    const after = await listIndexes(coll);
    for (const spec of indexes) {
      const found = after.find((ix) => ix['name'] === spec.name);
      if (!found) throw conflict(db, collection, spec);
      checkSame(db, collection, spec, found);
    }
  }
}

async function listIndexes(coll: Collection): Promise<Document[]> {
  try {
    return await coll.listIndexes().toArray();
  } catch (err) {
    if (err instanceof MongoServerError && err.code === 26 /* NamespaceNotFound */) return [];
    throw err;
  }
}

function checkSame(db: Db, collection: string, spec: IndexSpec, found: Document): void {
  const sameKey = JSON.stringify(found['key']) === JSON.stringify(spec.key);
  if (!sameKey || Boolean(found['unique']) !== Boolean(spec.unique)) throw conflict(db, collection, spec);
}

function conflict(db: Db, collection: string, spec: IndexSpec, cause?: MongoServerError): StorageError {
  const server = cause ? ` (${cause.codeName ?? cause.code})` : '';
  return new StorageError(
    'STORAGE_INDEX_CONFLICT',
    `index ${db.databaseName}.${collection}.${spec.name} cannot be created as declared${server}: an index with ` +
      'the same name or keys but other options exists — rename the index or drop the old one',
    cause ? { cause } : undefined,
  );
}
