import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@sealpost/testkit';
import Database from 'better-sqlite3';
import { WalCheckpointer } from './wal-checkpointer';

let dir: string;
let db: Database.Database;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-checkpointer-'));
  db = new Database(join(dir, 'c.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)');
});

afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

const autoCheckpoint = () => db.pragma('wal_autocheckpoint', { simple: true }) as number;
const insertMany = (from: number, count: number) => {
  const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
  for (let k = from; k < from + count; k++) db.transaction(() => insert.run(k, Buffer.alloc(2000)))();
};

describe('WalCheckpointer', () => {
  it('turns commit-time checkpoints off and copies the WAL into the database from its worker', async () => {
    const checkpointer = WalCheckpointer.start(db, db.name, { intervalMs: 10 });
    try {
      expect(autoCheckpoint()).toBe(0);
      insertMany(0, 200);
      await waitFor('the worker checkpointed', () => checkpointer.pagesCheckpointed >= 200);
      // Everything is in the database file: a reader on a fresh connection sees it, the WAL adds nothing new.
      const [state] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
      expect(state!.checkpointed).toBe(state!.log);
      expect(checkpointer.fellBack).toBe(false);
    } finally {
      await checkpointer.stop();
    }
    // Stopping closes only the worker's connection.
    insertMany(200, 1);
    expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(201);
  });

  it('gives checkpointing back to SQLite when its worker fails', async () => {
    const errors: unknown[] = [];
    const checkpointer = WalCheckpointer.start(db, join(dir, 'missing', 'nothing.sqlite'), {
      onError: (error) => errors.push(error),
    });
    await waitFor('the worker failed', () => checkpointer.fellBack);
    expect(autoCheckpoint()).toBe(1000);
    expect(errors.length).toBeGreaterThan(0);
    await checkpointer.stop();
  });
});
