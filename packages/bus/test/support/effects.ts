/** A consumer-side store for the contract tests: effect and apply-once marker in the same row. */
import type Database from 'better-sqlite3';
import { sqliteApplyOnce, type ReceivedEvent } from '../../src/index';

export function ensureEffects(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS effects (id TEXT PRIMARY KEY, count INTEGER NOT NULL, state TEXT, applied_version INTEGER)',
  );
}

/** Applies the event (count + 1, state = payload text) unless its version is not newer. True when applied. */
export function applyEffect(db: Database.Database, event: ReceivedEvent): boolean {
  const state = Buffer.from(event.payload).toString('utf8');
  return sqliteApplyOnce(db, { table: 'effects' }, event.aggregateId, event.aggregateVersion, (d) =>
    d
      .prepare(
        'INSERT INTO effects (id, count, state) VALUES (?, 1, ?) ON CONFLICT (id) DO UPDATE SET count = count + 1, state = excluded.state',
      )
      .run(event.aggregateId, state),
  );
}

export function effectRows(
  db: Database.Database,
): { id: string; count: number; state: string; applied_version: number }[] {
  return db.prepare('SELECT id, count, state, applied_version FROM effects ORDER BY id').all() as never;
}
