import { randomUUID } from 'node:crypto';
import {
  checkClaimArgs,
  checkTtl,
  type IdempotencyClaim,
  type IdempotencyClaimOptions,
  type IdempotencyClaimResult,
  type IdempotencyStore,
  type IdempotencyStoreOptions,
} from './idempotency-store';
import type { SqliteDatabase } from './sqlite/open-sqlite';
import { DEFAULT_PURGE_EVERY_MS, PurgeSchedule } from './purge-schedule';

interface Row {
  token: string;
  fingerprint: string;
  state: 'running' | 'completed';
  response: string | null;
  claim_expires_at: number;
  expires_at: number;
}

/**
 * IdempotencyStore over a table `_idempotency` in a service's SQLite file (created if missing). A claim reads and
 * writes the key's row inside an IMMEDIATE transaction, so processes sharing the file serialise on SQLite's write
 * lock; completing or releasing names the claim's token, so a claim that was taken over changes nothing.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly now: () => number;
  private readonly purges: PurgeSchedule;
  private readonly selectStmt;
  private readonly claimStmt;
  private readonly completeStmt;
  private readonly releaseStmt;
  private readonly purgeStmt;

  constructor(
    private readonly db: SqliteDatabase,
    options: IdempotencyStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.purges = new PurgeSchedule(options.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS, this.now());
    // expires_at: the claim's expiry while running, the end of retention once completed.
    db.exec(
      `CREATE TABLE IF NOT EXISTS _idempotency (
         key TEXT PRIMARY KEY,
         token TEXT NOT NULL,
         fingerprint TEXT NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('running', 'completed')),
         response TEXT,
         claim_expires_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
       );
       CREATE INDEX IF NOT EXISTS _idempotency_expiry ON _idempotency (expires_at)`,
    );
    this.selectStmt = db.prepare<[string], Row>(
      'SELECT token, fingerprint, state, response, claim_expires_at, expires_at FROM _idempotency WHERE key = ?',
    );
    this.claimStmt = db.prepare<[string, string, string, number, number]>(
      `INSERT INTO _idempotency (key, token, fingerprint, state, response, claim_expires_at, expires_at)
       VALUES (?, ?, ?, 'running', NULL, ?, ?)
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, fingerprint = excluded.fingerprint, state = 'running',
         response = NULL, claim_expires_at = excluded.claim_expires_at, expires_at = excluded.expires_at`,
    );
    this.completeStmt = db.prepare<[string, number, string, string]>(
      `UPDATE _idempotency SET state = 'completed', response = ?, expires_at = ?
       WHERE key = ? AND token = ? AND state = 'running'`,
    );
    this.releaseStmt = db.prepare<[string, string]>(
      "DELETE FROM _idempotency WHERE key = ? AND token = ? AND state = 'running'",
    );
    this.purgeStmt = db.prepare<[number]>('DELETE FROM _idempotency WHERE expires_at <= ?');
  }

  async claim(key: string, options: IdempotencyClaimOptions): Promise<IdempotencyClaimResult> {
    checkClaimArgs(key, options);
    const now = this.now();
    if (this.purges.due(now)) this.purgeStmt.run(now);
    return this.db
      .transaction((): IdempotencyClaimResult => {
        const row = this.selectStmt.get(key);
        if (row && row.expires_at > now) {
          return row.state === 'completed'
            ? { status: 'completed', fingerprint: row.fingerprint, response: row.response ?? '' }
            : { status: 'running', fingerprint: row.fingerprint, claimExpiresAt: row.claim_expires_at };
        }
        const token = randomUUID();
        const claimExpiresAt = now + options.claimTtlMs;
        this.claimStmt.run(key, token, options.fingerprint, claimExpiresAt, claimExpiresAt);
        return { status: 'claimed', claim: { key, token } };
      })
      .immediate();
  }

  async complete(claim: IdempotencyClaim, response: string, ttlMs: number): Promise<boolean> {
    checkTtl('ttl', ttlMs);
    return this.completeStmt.run(response, this.now() + ttlMs, claim.key, claim.token).changes === 1;
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    this.releaseStmt.run(claim.key, claim.token);
  }

  async purgeExpired(): Promise<number> {
    return this.purgeStmt.run(this.now()).changes;
  }
}
