/**
 * Consumer idempotency. Events carry aggregate id + version; a consumer keeps, in the SAME document/row as
 * the effect, the last applied version (and optionally a bounded set of applied event ids). An event whose
 * version is not newer has no effect — so a redelivery never applies twice and a late old event (a
 * `confirmed` arriving after `revoked`) never undoes a newer one.
 */
import type Database from 'better-sqlite3';
import type { Collection, Document, Filter, UpdateFilter } from 'mongodb';

/** The marker stored beside the effect. */
export interface ApplyMarker {
  readonly version?: number;
  /** Most recent applied event ids, newest last, bounded (for effects not keyed by aggregate version). */
  readonly eventIds?: readonly string[];
}

export type ApplyDecision =
  { readonly apply: true } | { readonly apply: false; readonly reason: 'stale-version' | 'already-applied' };

/** Pure decision: apply only events newer than the marker and not already applied. */
export function decideApply(
  marker: ApplyMarker | null | undefined,
  event: { readonly id: string; readonly aggregateVersion: number },
): ApplyDecision {
  if (marker?.eventIds?.includes(event.id)) return { apply: false, reason: 'already-applied' };
  if (marker?.version !== undefined && event.aggregateVersion <= marker.version)
    return { apply: false, reason: 'stale-version' };
  return { apply: true };
}

export const DEFAULT_APPLIED_IDS = 64;

/** The marker after applying `event`: its version, and its id appended to the bounded id list. */
export function nextMarker(
  marker: ApplyMarker | null | undefined,
  event: { readonly id: string; readonly aggregateVersion: number },
  maxIds = DEFAULT_APPLIED_IDS,
): Required<ApplyMarker> {
  const ids = [...(marker?.eventIds ?? []), event.id].slice(-maxIds);
  return { version: Math.max(event.aggregateVersion, marker?.version ?? 0), eventIds: ids };
}

// ---------------------------------------------------------------------------------------------- MongoDB

/**
 * The filter that matches the document only if `version` is newer than its stored marker (or it has none):
 * `{_id, $or: [{field: {$lt: v}}, {field: {$exists: false}}]}`.
 */
export function mongoApplyOnceFilter<T extends Document>(
  id: unknown,
  version: number,
  field = 'appliedVersion',
): Filter<T> {
  return { _id: id, $or: [{ [field]: { $lt: version } }, { [field]: { $exists: false } }] } as Filter<T>;
}

/** Adds `$set: {field: version}` to the effect's update so effect and marker land in one write. */
export function mongoApplyOnceUpdate<T extends Document>(
  update: UpdateFilter<T>,
  version: number,
  field = 'appliedVersion',
): UpdateFilter<T> {
  const set = { ...(update.$set as Record<string, unknown> | undefined), [field]: version };
  return { ...update, $set: set } as UpdateFilter<T>;
}

/**
 * Applies `update` to document `id` only if `version` is newer than its marker, in one conditional write.
 * Returns true when applied. With `upsert`, a missing document is created; a stale event then collides on
 * `_id` (the filter did not match an existing document) and is reported as not applied.
 */
export async function mongoApplyOnce<T extends Document>(
  collection: Collection<T>,
  id: unknown,
  version: number,
  update: UpdateFilter<T>,
  options: { upsert?: boolean; field?: string } = {},
): Promise<boolean> {
  const field = options.field ?? 'appliedVersion';
  try {
    const result = await collection.updateOne(
      mongoApplyOnceFilter<T>(id, version, field),
      mongoApplyOnceUpdate(update, version, field),
      { upsert: options.upsert ?? false },
    );
    return result.matchedCount === 1 || result.upsertedCount === 1;
  } catch (error) {
    if (options.upsert && (error as { code?: unknown }).code === 11000) return false;
    throw error;
  }
}

// ----------------------------------------------------------------------------------------------- SQLite

export interface SqliteApplyOnceTarget {
  readonly table: string;
  readonly idColumn?: string;
  /** Column holding the last applied aggregate version, in the same row as the effect. */
  readonly versionColumn?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function ident(name: string): string {
  if (!IDENT.test(name)) throw new RangeError('invalid SQL identifier');
  return `"${name}"`;
}

/**
 * Runs `effect` and records `version` on row `id` in one IMMEDIATE transaction, only if `version` is newer
 * than the row's marker. `effect` must write (or create) that same row. Returns true when applied.
 */
export function sqliteApplyOnce(
  db: Database.Database,
  target: SqliteApplyOnceTarget,
  id: string,
  version: number,
  effect: (db: Database.Database) => void,
): boolean {
  const table = ident(target.table);
  const idColumn = ident(target.idColumn ?? 'id');
  const versionColumn = ident(target.versionColumn ?? 'applied_version');
  return db
    .transaction((): boolean => {
      const row = db.prepare(`SELECT ${versionColumn} AS v FROM ${table} WHERE ${idColumn} = ?`).get(id) as
        { v: number | null } | undefined;
      const decision = decideApply(row?.v == null ? undefined : { version: row.v }, {
        id: '',
        aggregateVersion: version,
      });
      if (!decision.apply) return false;
      effect(db);
      const marked = db.prepare(`UPDATE ${table} SET ${versionColumn} = ? WHERE ${idColumn} = ?`).run(version, id);
      // The effect must have written the row: a marker elsewhere would not be atomic with it.
      if (marked.changes !== 1) throw new Error('apply-once effect did not create the marked row');
      return true;
    })
    .immediate();
}
