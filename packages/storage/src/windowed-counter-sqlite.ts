import type { SqliteDatabase } from './sqlite/open-sqlite';
import {
  checkTakeArgs,
  takeFromWindow,
  windowExpiresAt,
  type WindowRule,
  type WindowSlice,
  type WindowedCounterStore,
  type WindowedCounterStoreOptions,
  type WindowedTake,
} from './windowed-counter';
import { DEFAULT_PURGE_EVERY_MS, PurgeSchedule } from './purge-schedule';

/**
 * WindowedCounterStore over a table `_windowed_counters` in a service's SQLite file (created if missing): one row
 * per key holding its slices. A take reads and writes the row inside an IMMEDIATE transaction, so processes sharing
 * the file serialise on SQLite's write lock.
 *
 * A take commits with synchronous=NORMAL, without an fsync of its own (the connection's own setting, FULL from
 * openSqlite, is back right after). The count survives a crash of the process; only a power cut or kernel crash can
 * lose the takes since the last fsynced commit of any writer of the file. A quota then forgets a few of its most
 * recent units, which costs less than an fsync on every guarded call (a reveal waits for it). Durable writes sharing
 * the file are unaffected: the WAL is append-only, so their fsync makes every earlier take durable too.
 */
export class SqliteWindowedCounterStore implements WindowedCounterStore {
  private readonly now: () => number;
  private readonly purges: PurgeSchedule;
  private readonly selectStmt;
  private readonly upsertStmt;
  private readonly purgeStmt;
  private readonly takeTx;
  /** The connection's own level (0–3), restored after each take. */
  private readonly synchronous: number;

  constructor(
    private readonly db: SqliteDatabase,
    options: WindowedCounterStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.synchronous = db.pragma('synchronous', { simple: true }) as number;
    this.purges = new PurgeSchedule(options.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS, this.now());
    db.exec(
      `CREATE TABLE IF NOT EXISTS _windowed_counters (key TEXT PRIMARY KEY, slices TEXT NOT NULL, expires_at INTEGER NOT NULL);
       CREATE INDEX IF NOT EXISTS _windowed_counters_expiry ON _windowed_counters (expires_at)`,
    );
    this.selectStmt = db.prepare<[string], { slices: string; expires_at: number }>(
      'SELECT slices, expires_at FROM _windowed_counters WHERE key = ?',
    );
    this.upsertStmt = db.prepare<[string, string, number]>(
      `INSERT INTO _windowed_counters (key, slices, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET slices = excluded.slices, expires_at = excluded.expires_at`,
    );
    this.purgeStmt = db.prepare<[number]>('DELETE FROM _windowed_counters WHERE expires_at <= ?');
    this.takeTx = db.transaction((key: string, now: number, units: number, rule: WindowRule): WindowedTake => {
      const row = this.selectStmt.get(key);
      const held = row && row.expires_at > now ? (JSON.parse(row.slices) as WindowSlice[]) : [];
      const { take, slices } = takeFromWindow(held, now, units, rule);
      if (take.granted) this.upsertStmt.run(key, JSON.stringify(slices), windowExpiresAt(slices, rule));
      return take;
    });
  }

  async take(key: string, units: number, rule: WindowRule): Promise<WindowedTake> {
    checkTakeArgs(key, units, rule);
    const now = this.now();
    if (this.purges.due(now)) this.purgeStmt.run(now);
    // exec, not a prepared statement: SQLite applies this pragma when it compiles it.
    this.db.exec('PRAGMA synchronous = NORMAL');
    try {
      return this.takeTx.immediate(key, now, units, rule);
    } finally {
      this.db.exec(`PRAGMA synchronous = ${this.synchronous}`);
    }
  }

  async purgeExpired(): Promise<number> {
    return this.purgeStmt.run(this.now()).changes;
  }
}
