import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BusClosedError } from '../errors';
import { GroupCommit } from './group-commit';

let dir: string;
let db: Database.Database;
let topLevelCommits: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-groupcommit-'));
  db = new Database(join(dir, 'g.sqlite'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY)');
  // Counts transactions begun outside a transaction (nested calls are savepoints of the same commit).
  topLevelCommits = 0;
  const original = db.transaction.bind(db);
  jest.spyOn(db, 'transaction').mockImplementation(((fn: (...args: unknown[]) => unknown) => {
    const tx = original(fn);
    const count = () => {
      if (!db.inTransaction) topLevelCommits++;
    };
    const wrapped = Object.assign((...args: unknown[]) => (count(), tx(...args)), {
      immediate: (...args: unknown[]) => (count(), tx.immediate(...args)),
    });
    return wrapped;
  }) as never);
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const insert = (k: number) => () => db.prepare('INSERT INTO t (k) VALUES (?)').run(k).changes;
const rows = () => (db.prepare('SELECT k FROM t ORDER BY k').all() as { k: number }[]).map((r) => r.k);

describe('GroupCommit', () => {
  it('commits writes issued in the same turn in one transaction, resolving each after the commit', async () => {
    const writes = new GroupCommit(db);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => writes.write(insert(i))));
    expect(results).toEqual(Array(500).fill(1));
    expect(rows()).toHaveLength(500);
    expect(topLevelCommits).toBe(1);
  });

  it('rolls back and rejects only the write that failed; the rest of the group commits', async () => {
    const writes = new GroupCommit(db);
    const outcomes = await Promise.allSettled([
      writes.write(insert(1)),
      writes.write(() => {
        insert(2)();
        insert(1)(); // duplicate key: this write's own insert of 2 must be undone too
      }),
      writes.write(insert(3)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(rows()).toEqual([1, 3]);
    expect(topLevelCommits).toBe(1);
  });

  it('flush(then) commits queued writes and `then` together, synchronously', async () => {
    const writes = new GroupCommit(db);
    const pending = writes.write(insert(1));
    const seen = writes.flush(() => rows());
    expect(seen).toEqual([1]);
    await expect(pending).resolves.toBe(1);
    expect(topLevelCommits).toBe(1);
    expect(() => writes.flush(() => insert(1)())).toThrow(/UNIQUE/);
  });

  it('splits very large groups and commits what is queued on close, then refuses writes', async () => {
    const writes = new GroupCommit(db, 100);
    const all = Array.from({ length: 250 }, (_, i) => writes.write(insert(i)));
    writes.close();
    await Promise.all(all);
    expect(rows()).toHaveLength(250);
    expect(topLevelCommits).toBe(3);
    await expect(writes.write(insert(999))).rejects.toThrow(BusClosedError);
  });
});

describe('GroupCommit durability', () => {
  const synchronous = () => db.pragma('synchronous', { simple: true }) as number;
  const FULL = 2;
  const NORMAL = 1;

  it('commits a group of relaxed writes without its own fsync (synchronous=NORMAL), then restores FULL', async () => {
    db.pragma('synchronous = FULL');
    const writes = new GroupCommit(db);
    const seen = await Promise.all([writes.write(synchronous, 'relaxed'), writes.write(synchronous, 'relaxed')]);
    expect(seen).toEqual([NORMAL, NORMAL]);
    expect(synchronous()).toBe(FULL);
    expect(writes.flush(synchronous, 'relaxed')).toBe(NORMAL);
    expect(synchronous()).toBe(FULL);
  });

  it('fsyncs (synchronous=FULL) any group holding a durable write, and durable is the default', async () => {
    db.pragma('synchronous = FULL');
    const writes = new GroupCommit(db);
    const mixed = await Promise.all([writes.write(synchronous, 'relaxed'), writes.write(synchronous)]);
    expect(mixed).toEqual([FULL, FULL]);
    expect(writes.flush(synchronous)).toBe(FULL);
    void writes.write(insert(1));
    expect(writes.flush(synchronous, 'relaxed')).toBe(FULL);
  });

  it('restores FULL when a relaxed group fails', () => {
    db.pragma('synchronous = FULL');
    const writes = new GroupCommit(db);
    expect(() =>
      writes.flush(() => {
        insert(1)();
        insert(1)();
      }, 'relaxed'),
    ).toThrow(/UNIQUE/);
    expect(synchronous()).toBe(FULL);
  });
});
