/**
 * SQLite side of the outbox. SQLite has real local transactions, so pending events live in a child table
 * written in the SAME transaction as the aggregate's row — rather than a JSON array in that row: the
 * relay finds work with an index scan of a small table instead of scanning every aggregate, write order is
 * the autoincrement sequence, and removal is a DELETE by event id that cannot rewrite sibling events.
 */
import type Database from 'better-sqlite3';
import type { EventEnvelope } from '../port';
import { toOutboxEntry, type OutboxEntry } from './outbox-entry';
import type { OutboxSource, PendingDocument, PublishedEvent } from './outbox-source';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function tableName(name: string): string {
  if (!IDENT.test(name)) throw new RangeError('invalid outbox table name');
  return `"${name}"`;
}

/** Creates the outbox table (idempotent). */
export function ensureSqliteOutbox(db: Database.Database, table = 'outbox'): void {
  const t = tableName(table);
  db.exec(`CREATE TABLE IF NOT EXISTS ${t} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL
  )`);
}

/** The INSERT of each (database, table), prepared once: preparing costs more than the insert itself. */
const appendStatements = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function appendStatement(db: Database.Database, table: string): Database.Statement {
  let byTable = appendStatements.get(db);
  if (byTable === undefined) appendStatements.set(db, (byTable = new Map()));
  let statement = byTable.get(table);
  if (statement === undefined) {
    statement = db.prepare(`INSERT INTO ${tableName(table)} (aggregate, event_id, entry) VALUES (?, ?, ?)`);
    byTable.set(table, statement);
  }
  return statement;
}

/**
 * Records a pending event. Must run inside the transaction that writes the state change (it throws
 * otherwise), so the two commit or roll back together.
 */
export function appendPendingEvent(
  db: Database.Database,
  aggregateKey: string,
  envelope: EventEnvelope,
  table = 'outbox',
): void {
  if (!db.inTransaction) throw new Error('appendPendingEvent must run inside the state change transaction');
  const entry = toOutboxEntry(envelope);
  appendStatement(db, table).run(aggregateKey, entry.id, JSON.stringify(entry));
}

export class SqliteOutboxSource implements OutboxSource<string> {
  private readonly table: string;
  private statements:
    | {
        readonly list: Database.Statement<[number]>;
        readonly remove: Database.Statement<[string, string]>;
        readonly removeMany: Database.Transaction<(events: readonly PublishedEvent<string>[]) => void>;
      }
    | undefined;

  constructor(
    private readonly db: Database.Database,
    table = 'outbox',
  ) {
    this.table = tableName(table);
  }

  /** Prepared on first use (the table may be created after this source). */
  private get sql(): NonNullable<SqliteOutboxSource['statements']> {
    if (this.statements === undefined) {
      const remove = this.db.prepare<[string, string]>(
        `DELETE FROM ${this.table} WHERE aggregate = ? AND event_id = ?`,
      );
      this.statements = {
        list: this.db.prepare<[number]>(`SELECT aggregate, entry FROM ${this.table} ORDER BY seq LIMIT ?`),
        remove,
        removeMany: this.db.transaction((events: readonly PublishedEvent<string>[]) => {
          for (const { key, entry } of events) remove.run(key, entry.id);
        }),
      };
    }
    return this.statements;
  }

  async listPending(limit: number): Promise<PendingDocument<string>[]> {
    // Oldest events first; grouped per aggregate keeping write order. Reading stops at the first row of an aggregate
    // beyond `limit` (a listed aggregate's later events come with a later scan, after these are removed), and at
    // `limit * 16` rows.
    const byAggregate = new Map<string, OutboxEntry[]>();
    for (const row of this.sql.list.iterate(limit * 16) as IterableIterator<{ aggregate: string; entry: string }>) {
      let list = byAggregate.get(row.aggregate);
      if (list === undefined) {
        if (byAggregate.size >= limit) break;
        byAggregate.set(row.aggregate, (list = []));
      }
      list.push(JSON.parse(row.entry) as OutboxEntry);
    }
    return [...byAggregate].map(([key, events]) => ({ key, events }));
  }

  async removeEvent(key: string, entry: OutboxEntry): Promise<void> {
    this.sql.remove.run(key, entry.id);
  }

  /** One IMMEDIATE transaction for all of them: one commit (one fsync with synchronous=FULL) per batch. */
  async removeEvents(events: readonly PublishedEvent<string>[]): Promise<void> {
    if (events.length > 0) this.sql.removeMany.immediate(events);
  }
}
