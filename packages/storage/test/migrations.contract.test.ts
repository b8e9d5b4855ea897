import fs from 'node:fs';
import Database from 'better-sqlite3';
import {
  isStorageError,
  type MongoMigration,
  openSqlite,
  runMongoMigrations,
  type SqliteMigration,
} from '../src/index';
import { describeRepositoryContract } from '../src/testing';

/** A store-neutral migration step: it records `marker` (and then throws if `fail`). */
interface Step {
  version: number;
  name: string;
  marker: string;
  fail?: boolean;
  delayMs?: number;
}

interface MigrationCtx {
  /** Runs the steps as one service start-up would. */
  migrate(steps: Step[]): Promise<void>;
  /** Runs the steps from two instances starting at the same time. */
  migrateTwice(steps: Step[]): Promise<void>;
  /** Every marker written, in write order. */
  markers(): Promise<string[]>;
  /** Versions recorded as applied. */
  versions(): Promise<number[]>;
}

describeRepositoryContract<MigrationCtx>(
  'migrations',
  {
    async sqlite({ file }) {
      const toSqlite = (steps: Step[]): SqliteMigration[] =>
        steps.map((s) => ({
          version: s.version,
          name: s.name,
          up: (db) => {
            db.exec('CREATE TABLE IF NOT EXISTS markers (seq INTEGER PRIMARY KEY AUTOINCREMENT, marker TEXT NOT NULL)');
            db.prepare('INSERT INTO markers (marker) VALUES (?)').run(s.marker);
            if (s.fail) throw new Error(`step ${s.version} broke`);
          },
        }));
      const migrate = async (steps: Step[]): Promise<void> => {
        openSqlite(file, { migrations: toSqlite(steps) }).close();
      };
      // Read with a plain connection: openSqlite itself would (rightly) refuse a file migrated past its list.
      const read = <T>(sql: string): T[] => {
        if (!fs.existsSync(file)) return []; // an invalid migration list must not even create the file
        const db = new Database(file, { readonly: true });
        try {
          const table = sql.includes('markers') ? 'markers' : '_migrations';
          const exists = db.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').get(table);
          return exists ? (db.prepare(sql).pluck().all() as T[]) : [];
        } finally {
          db.close();
        }
      };
      return {
        migrate,
        // SQLite is synchronous in one process; two opens in a row stand in for two instances.
        migrateTwice: async (steps) => {
          await Promise.all([migrate(steps), migrate(steps)]);
        },
        markers: async () => read<string>('SELECT marker FROM markers ORDER BY seq'),
        versions: async () => read<number>('SELECT version FROM _migrations ORDER BY version'),
      };
    },
    async mongo({ db }) {
      const toMongo = (steps: Step[]): MongoMigration[] =>
        steps.map((s) => ({
          version: s.version,
          name: s.name,
          up: async (d) => {
            await d.collection('markers').insertOne({ marker: s.marker, at: process.hrtime.bigint().toString() });
            if (s.delayMs) await new Promise((r) => setTimeout(r, s.delayMs));
            if (s.fail) throw new Error(`step ${s.version} broke`);
          },
        }));
      const migrate = async (steps: Step[]): Promise<void> => {
        await runMongoMigrations(db, toMongo(steps));
      };
      return {
        migrate,
        migrateTwice: async (steps) => {
          await Promise.all([migrate(steps), migrate(steps)]);
        },
        markers: async () =>
          (await db.collection('markers').find().sort({ at: 1 }).toArray()).map((d) => String(d['marker'])),
        versions: async () =>
          (await db.collection('_migrations').find({ state: 'applied' }).sort({ _id: 1 }).toArray()).map((d) =>
            Number(d['_id']),
          ),
      };
    },
  },
  (ctx, backend) => {
    const one: Step = { version: 1, name: 'create', marker: 'one' };
    const two: Step = { version: 2, name: 'backfill', marker: 'two' };
    const three: Step = { version: 3, name: 'index', marker: 'three' };

    it('applies pending steps in version order and records them', async () => {
      await ctx().migrate([one, two]);
      expect(await ctx().markers()).toEqual(['one', 'two']);
      expect(await ctx().versions()).toEqual([1, 2]);
    });

    it('runs each step once across restarts and applies only new ones', async () => {
      await ctx().migrate([one, two]);
      await ctx().migrate([one, two]);
      await ctx().migrate([one, two, three]);
      expect(await ctx().markers()).toEqual(['one', 'two', 'three']);
      expect(await ctx().versions()).toEqual([1, 2, 3]);
    });

    it('runs each step once when two instances start together', async () => {
      const slow = { ...two, delayMs: 300 };
      await ctx().migrateTwice([one, slow, three]);
      expect(await ctx().markers()).toEqual(['one', 'two', 'three']);
      expect(await ctx().versions()).toEqual([1, 2, 3]);
    });

    it('refuses a database migrated by newer code, changing nothing', async () => {
      await ctx().migrate([one, two, three]);
      const attempt = ctx().migrate([one, two, { version: 4, name: 'never', marker: 'four' }].slice(0, 2));
      await expect(attempt).rejects.toThrow(expect.objectContaining({ code: 'STORAGE_MIGRATION_NEWER' }));
      await expect(ctx().migrate([one, two])).rejects.toThrow(
        /is at migration version 3 but this code knows only up to 2; refusing to start/,
      );
      expect(await ctx().markers()).toEqual(['one', 'two', 'three']);
    });

    it('reports a failing step, does not record it, and retries it on the next start', async () => {
      await ctx().migrate([one]);
      let caught: unknown;
      try {
        await ctx().migrate([one, { ...two, fail: true }, three]);
      } catch (err) {
        caught = err;
      }
      expect(isStorageError(caught, 'STORAGE_MIGRATION_FAILED')).toBe(true);
      expect((caught as Error).message).toContain('migration 2 (backfill) failed');
      expect(await ctx().versions()).toEqual([1]); // later steps did not run either
      await ctx().migrate([one, two, three]);
      expect(await ctx().versions()).toEqual([1, 2, 3]);
      // SQLite rolls the failed attempt back; MongoDB has no transactions, so its partial write stays.
      expect(await ctx().markers()).toEqual(
        backend === 'sqlite' ? ['one', 'two', 'three'] : ['one', 'two', 'two', 'three'],
      );
    });

    it.each([
      ['a duplicate version', [one, { ...two, version: 1 }]],
      ['a decreasing list', [two, one]],
      ['version zero', [{ ...one, version: 0 }]],
    ])('rejects %s before touching the database', async (_label, steps) => {
      await expect(ctx().migrate(steps)).rejects.toThrow(
        expect.objectContaining({ code: 'STORAGE_MIGRATION_INVALID' }),
      );
      expect(await ctx().markers()).toEqual([]);
      expect(await ctx().versions()).toEqual([]);
    });
  },
);
