import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StorageError } from '../errors';
import { openSqlite, type SqliteDatabase, sqliteFileFor } from './open-sqlite';

describe('openSqlite', () => {
  let dir: string;
  const opened: SqliteDatabase[] = [];
  const open = (...args: Parameters<typeof openSqlite>): SqliteDatabase => {
    const db = openSqlite(...args);
    opened.push(db);
    return db;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-sqlite-'));
  });
  afterEach(() => {
    for (const db of opened.splice(0)) if (db.open) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates missing parent directories and a 0600 file, with WAL files of the same mode', () => {
    const file = path.join(dir, 'nested', 'deeper', 'svc.sqlite');
    const db = open(file, { migrations: [{ version: 1, name: 't', up: 'CREATE TABLE t (x INTEGER)' }] });
    db.prepare('INSERT INTO t VALUES (1)').run();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
  });

  it('tightens an existing world-readable file to 0600', () => {
    const file = path.join(dir, 'loose.sqlite');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o644);
    open(file, { migrations: [] });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('turns on WAL, synchronous=FULL, foreign keys and the busy timeout', () => {
    const db = open(path.join(dir, 'p.sqlite'), { migrations: [], busyTimeoutMs: 1234 });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(1234);
  });

  it('enforces foreign keys', () => {
    const db = open(path.join(dir, 'fk.sqlite'), {
      migrations: [
        {
          version: 1,
          name: 'parent-child',
          up: 'CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER NOT NULL REFERENCES p(id))',
        },
      ],
    });
    expect(() => db.prepare('INSERT INTO c VALUES (42)').run()).toThrow(/FOREIGN KEY/);
  });

  it('rolls back a failing migration entirely and reports STORAGE_MIGRATION_FAILED', () => {
    const file = path.join(dir, 'fail.sqlite');
    const ok = { version: 1, name: 'one', up: 'CREATE TABLE one (x INTEGER)' };
    const bad = {
      version: 2,
      name: 'two',
      up: (db: SqliteDatabase) => {
        db.exec('CREATE TABLE two (x INTEGER)');
        throw new Error('step exploded');
      },
    };
    let caught: unknown;
    try {
      open(file, { migrations: [ok, bad] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).code).toBe('STORAGE_MIGRATION_FAILED');
    expect((caught as StorageError).message).toContain('migration 2 (two)');
    expect(((caught as StorageError).cause as Error).message).toBe('step exploded');

    const fixed = { version: 2, name: 'two', up: 'CREATE TABLE two (y INTEGER)' };
    const db = open(file, { migrations: [ok, fixed] });
    expect(db.prepare('SELECT version FROM _migrations ORDER BY version').pluck().all()).toEqual([1, 2]);
    // The failed attempt's table is gone: the fixed step created it with its own column.
    expect(db.prepare("SELECT name FROM pragma_table_info('two')").pluck().all()).toEqual(['y']);
  });

  it('refuses an asynchronous migration step', () => {
    const step = { version: 1, name: 'async', up: (async () => undefined) as unknown as () => void };
    expect(() => open(path.join(dir, 'a.sqlite'), { migrations: [step] })).toThrow(
      expect.objectContaining({ code: 'STORAGE_MIGRATION_INVALID' }),
    );
  });

  it('closes the file when opening fails', () => {
    const file = path.join(dir, 'closed.sqlite');
    open(file, { migrations: [{ version: 2, name: 'b', up: 'SELECT 1' }] }).close();
    expect(() => openSqlite(file, { migrations: [{ version: 1, name: 'a', up: 'SELECT 1' }] })).toThrow(
      expect.objectContaining({ code: 'STORAGE_MIGRATION_NEWER' }),
    );
    // A lingering handle would keep the WAL lock; an exclusive lock proves there is none.
    const db = open(file, { migrations: [{ version: 2, name: 'b', up: 'SELECT 1' }] });
    expect(() => db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT')).not.toThrow();
  });
});

describe('sqliteFileFor', () => {
  it('puts one file per service under the data directory', () => {
    expect(sqliteFileFor('/var/lib/sealpost', 'consent')).toBe('/var/lib/sealpost/consent.sqlite');
  });

  it.each(['', '../vault', 'Vault', 'a/b', 'x'.repeat(64)])('rejects the service name %j', (name) => {
    expect(() => sqliteFileFor('/d', name)).toThrow(expect.objectContaining({ code: 'STORAGE_INVALID_ARGUMENT' }));
  });
});
