import type { LeaseGrant, LeaseStore } from './lease';
import { checkLeaseArgs, type LeaseStoreOptions } from './lease-args';
import type { SqliteDatabase } from './sqlite/open-sqlite';

interface LeaseRow {
  name: string;
  holder: string;
  token: number;
  expires_at: number;
}

/**
 * LeaseStore over a table `_leases` in a service's SQLite file (created if missing). Each step is one
 * INSERT … ON CONFLICT DO UPDATE / UPDATE statement inside an IMMEDIATE transaction, so connections from several
 * processes sharing the file serialise on SQLite's write lock.
 */
export class SqliteLeaseStore implements LeaseStore {
  private readonly now: () => number;
  private readonly acquireStmt;
  private readonly renewStmt;
  private readonly releaseStmt;

  constructor(
    private readonly db: SqliteDatabase,
    options: LeaseStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    db.exec(
      'CREATE TABLE IF NOT EXISTS _leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, expires_at INTEGER NOT NULL)',
    );
    // A live lease passes the WHERE only for its own holder (an extension, same token); an expired or released
    // one is taken by whoever asks, with the next token — also by its previous holder, who may have been fenced.
    this.acquireStmt = db.prepare<[{ name: string; holder: string; expiresAt: number; now: number }], LeaseRow>(
      `INSERT INTO _leases (name, holder, token, expires_at) VALUES (@name, @holder, 1, @expiresAt)
       ON CONFLICT (name) DO UPDATE SET
         token = CASE WHEN _leases.expires_at >= @now THEN _leases.token ELSE _leases.token + 1 END,
         holder = excluded.holder,
         expires_at = excluded.expires_at
       WHERE _leases.expires_at < @now OR _leases.holder = excluded.holder
       RETURNING name, holder, token, expires_at`,
    );
    // An expired lease is lost even if nobody took it yet (same rule as the MongoDB store).
    this.renewStmt = db.prepare<[number, string, string, number, number], LeaseRow>(
      `UPDATE _leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at >= ?
       RETURNING name, holder, token, expires_at`,
    );
    // Expire rather than delete, so the next token continues from this one.
    this.releaseStmt = db.prepare<[string, string, number]>(
      'UPDATE _leases SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?',
    );
  }

  async tryAcquire(name: string, holder: string, ttlMs: number): Promise<LeaseGrant | null> {
    checkLeaseArgs(name, holder, ttlMs);
    const now = this.now();
    const row = this.db
      .transaction(() => this.acquireStmt.get({ name, holder, expiresAt: now + ttlMs, now }))
      .immediate();
    return row ? grantOf(row) : null;
  }

  async renew(grant: LeaseGrant, ttlMs: number): Promise<LeaseGrant | null> {
    checkLeaseArgs(grant.name, grant.holder, ttlMs);
    const now = this.now();
    const row = this.db
      .transaction(() => this.renewStmt.get(now + ttlMs, grant.name, grant.holder, grant.token, now))
      .immediate();
    return row ? grantOf(row) : null;
  }

  async release(grant: LeaseGrant): Promise<void> {
    this.db.transaction(() => this.releaseStmt.run(grant.name, grant.holder, grant.token)).immediate();
  }
}

function grantOf(row: LeaseRow): LeaseGrant {
  return { name: row.name, holder: row.holder, token: row.token, expiresAt: row.expires_at };
}
