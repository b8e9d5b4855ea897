/**
 * SQLite side of the outbox. SQLite has real local transactions, so pending events live in a child table
 * written in the SAME transaction as the aggregate's row — rather than a JSON array in that row: the
 * relay finds work with an index scan of a small table instead of scanning every aggregate, write order is
 * the autoincrement sequence, and removal is a DELETE by event id that cannot rewrite sibling events.
 */
import type Database from 'better-sqlite3';
import type { EventEnvelope } from '../port';
import { toOutboxEntry, type OutboxEntry } from './outbox-entry';
import type { OutboxSource, PendingDocument } from './outbox-source';

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
  db.prepare(`INSERT INTO ${tableName(table)} (aggregate, event_id, entry) VALUES (?, ?, ?)`).run(
    aggregateKey,
    entry.id,
    JSON.stringify(entry),
  );
}

export class SqliteOutboxSource implements OutboxSource<string> {
  private readonly table: string;

  constructor(
    private readonly db: Database.Database,
    table = 'outbox',
  ) {
    this.table = tableName(table);
  }

  async listPending(limit: number): Promise<PendingDocument<string>[]> {
    // Oldest events first; grouped per aggregate keeping write order.
    const rows = this.db.prepare(`SELECT aggregate, entry FROM ${this.table} ORDER BY seq LIMIT ?`).all(limit * 16) as {
      aggregate: string;
      entry: string;
    }[];
    const byAggregate = new Map<string, OutboxEntry[]>();
    for (const row of rows) {
      const list = byAggregate.get(row.aggregate) ?? [];
      if (list.length === 0 && byAggregate.size >= limit) continue;
      list.push(JSON.parse(row.entry) as OutboxEntry);
      byAggregate.set(row.aggregate, list);
    }
    return [...byAggregate].map(([key, events]) => ({ key, events }));
  }

  async removeEvent(key: string, entry: OutboxEntry): Promise<void> {
    this.db.prepare(`DELETE FROM ${this.table} WHERE aggregate = ? AND event_id = ?`).run(key, entry.id);
  }
}
