import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqlite, SqliteWindowedCounterStore, type SqliteDatabase } from '../src/index';

const FULL = 2;
const rule = { limit: 5, windowMs: 60_000 };

describe('SqliteWindowedCounterStore durability', () => {
  let dir: string;
  let db: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealpost-counter-'));
    db = openSqlite(path.join(dir, 'svc.sqlite'), { migrations: [] });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves the file's synchronous=FULL in place for every other writer, after granted, refused and failed takes", async () => {
    const store = new SqliteWindowedCounterStore(db);
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL);
    expect((await store.take('k', 5, rule)).granted).toBe(true);
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL);
    expect((await store.take('k', 1, rule)).granted).toBe(false);
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL);
    // A take that fails inside its transaction (the table is gone) still restores the setting.
    db.exec('DROP TABLE _windowed_counters');
    await expect(store.take('k', 1, rule)).rejects.toMatchObject({ message: expect.stringMatching(/no such table/) });
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL);
  });

  it('keeps what was taken when the process is killed right after the take', async () => {
    const file = path.join(dir, 'crash.sqlite');
    // A separate process takes 4 units and dies by SIGKILL: no close, no checkpoint, no exit handlers.
    const script = `
      const { openSqlite, SqliteWindowedCounterStore } = require(${JSON.stringify(path.resolve(__dirname, '../src/index.ts'))});
      const store = new SqliteWindowedCounterStore(openSqlite(${JSON.stringify(file)}, { migrations: [] }));
      store.take('reveal|op-1', 4, ${JSON.stringify(rule)}).then(() => process.kill(process.pid, 'SIGKILL'));
    `;
    const child = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const reopened = openSqlite(file, { migrations: [] });
    try {
      const store = new SqliteWindowedCounterStore(reopened);
      expect(await store.take('reveal|op-1', 1, rule)).toEqual({ granted: true, used: 5 });
      expect((await store.take('reveal|op-1', 1, rule)).granted).toBe(false);
    } finally {
      reopened.close();
    }
  });
});
