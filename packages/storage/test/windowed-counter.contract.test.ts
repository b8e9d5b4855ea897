import {
  connectMongo,
  isStorageError,
  MemoryWindowedCounterStore,
  MongoWindowedCounterStore,
  openSqlite,
  SqliteWindowedCounterStore,
  type MongoHandle,
  type SqliteDatabase,
  type WindowedCounterStore,
  type WindowedTake,
} from '../src/index';
import { describeRepositoryContract, type ContractBackend } from '../src/testing';

interface CounterCtx {
  /**
   * A store on its own connection (another replica, as far as the server can tell) with the given clock. Memory
   * stores share nothing, so the memory backend hands out one store.
   */
  openStore(now?: () => number): WindowedCounterStore;
  readonly shared: boolean;
  close(): Promise<void>;
}

const HOUR = 3_600_000;

function counterContract(ctx: () => CounterCtx, backend: ContractBackend | 'memory'): void {
  let clock: number;
  const now = (): number => clock;
  beforeEach(() => {
    clock = 1_700_000_000_000;
  });

  it('grants up to the limit per key, then refuses with a retry-after inside the window', async () => {
    const store = ctx().openStore(now);
    const rule = { limit: 3, windowMs: 60_000 };
    expect(await store.take('reveal|op-1', 1, rule)).toEqual({ granted: true, used: 1 });
    expect(await store.take('reveal|op-1', 2, rule)).toEqual({ granted: true, used: 3 });
    const refused = await store.take('reveal|op-1', 1, rule);
    expect(refused).toMatchObject({ granted: false, used: 3 });
    const { retryAfterMs } = refused as Extract<WindowedTake, { granted: false }>;
    expect(retryAfterMs).toBeGreaterThan(59_000);
    expect(retryAfterMs).toBeLessThanOrEqual(61_000);
    // Other keys are independent.
    expect(await store.take('reveal|op-2', 3, rule)).toEqual({ granted: true, used: 3 });
  });

  it('grants again exactly when the retry-after says, not a millisecond before', async () => {
    const store = ctx().openStore(now);
    const rule = { limit: 5, windowMs: 10_000 };
    await store.take('k', 3, rule);
    clock += 4_321;
    await store.take('k', 2, rule);
    const refused = (await store.take('k', 2, rule)) as Extract<WindowedTake, { granted: false }>;
    expect(refused.granted).toBe(false);
    clock += refused.retryAfterMs - 1;
    expect((await store.take('k', 2, rule)).granted).toBe(false);
    clock += 1;
    expect(await store.take('k', 2, rule)).toEqual({ granted: true, used: 4 });
  });

  it('takes nothing when it refuses, and refuses a take larger than the limit with a window to wait', async () => {
    const store = ctx().openStore(now);
    const rule = { limit: 5, windowMs: 1000 };
    await store.take('k', 3, rule);
    expect((await store.take('k', 3, rule)).granted).toBe(false);
    expect(await store.take('k', 2, rule)).toEqual({ granted: true, used: 5 });
    expect(await store.take('big', 6, rule)).toEqual({ granted: false, used: 0, retryAfterMs: 1000 });
    expect(await store.take('big', 5, rule)).toEqual({ granted: true, used: 5 });
  });

  // A memory store is one process's by definition.
  if (backend !== 'memory') {
    it('is one window for every process that opens the database', async () => {
      const a = ctx().openStore(now);
      const b = ctx().openStore(now);
      const rule = { limit: 4, windowMs: HOUR };
      expect(await a.take('find|op-1', 3, rule)).toEqual({ granted: true, used: 3 });
      expect(await b.take('find|op-1', 1, rule)).toEqual({ granted: true, used: 4 });
      expect((await a.take('find|op-1', 1, rule)).granted).toBe(false);
      expect((await b.take('find|op-1', 1, rule)).granted).toBe(false);
    });
  }

  it('never exceeds the limit under many concurrent takes from two clients', async () => {
    const clients = ctx().shared ? [ctx().openStore(), ctx().openStore()] : [ctx().openStore()];
    const rule = { limit: 25, windowMs: HOUR };
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => clients[i % clients.length]!.take('reveal|burst', 1, rule)),
    );
    expect(results.filter((r) => r.granted)).toHaveLength(25);
    for (const r of results.filter((r) => !r.granted)) {
      expect((r as Extract<WindowedTake, { granted: false }>).retryAfterMs).toBeGreaterThan(0);
    }
    // Uneven units: granted units never sum above the limit, and what is left is still grantable.
    const sizes = Array.from({ length: 30 }, (_, i) => 1 + (i % 4));
    const uneven = await Promise.all(
      sizes.map((units, i) =>
        clients[i % clients.length]!.take('resolve|dispatch', units, { limit: 40, windowMs: HOUR }),
      ),
    );
    const granted = sizes.filter((_, i) => uneven[i]!.granted).reduce((n, u) => n + u, 0);
    expect(granted).toBeLessThanOrEqual(40);
    const rest = await clients[0]!.take('resolve|dispatch', 40 - granted || 1, { limit: 40, windowMs: HOUR });
    expect(rest.granted).toBe(granted < 40);
  });

  it('purges keys whose window emptied, and keeps live ones', async () => {
    const store = ctx().openStore(now);
    const rule = { limit: 2, windowMs: 60_000 };
    await store.take('quiet', 1, rule);
    clock += 30_000;
    await store.take('busy', 2, rule);
    clock += 3 * HOUR; // beyond any grace a store keeps
    expect(await store.purgeExpired()).toBeGreaterThanOrEqual(2);
    await store.take('busier', 2, rule);
    expect(await store.purgeExpired()).toBe(0);
    expect(await store.take('busier', 1, rule)).toMatchObject({ granted: false, used: 2 });
    expect(await store.take('quiet', 2, rule)).toEqual({ granted: true, used: 2 });
  });

  it('rejects a bad key, units or rule, naming what is wrong', async () => {
    const store = ctx().openStore(now);
    const rule = { limit: 2, windowMs: 1000 };
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (isStorageError(e, 'STORAGE_INVALID_ARGUMENT') ? e.message : String(e)),
      );
    expect(await codeOf(store.take('', 1, rule))).toMatch(/counter key/);
    expect(await codeOf(store.take('k'.repeat(513), 1, rule))).toMatch(/counter key/);
    expect(await codeOf(store.take('k', 0, rule))).toMatch(/units/);
    expect(await codeOf(store.take('k', 1.5, rule))).toMatch(/units/);
    expect(await codeOf(store.take('k', 1, { limit: 0, windowMs: 1000 }))).toMatch(/limit/);
    expect(await codeOf(store.take('k', 1, { limit: 1, windowMs: 0 }))).toMatch(/window/);
  });

  if (backend !== 'memory') {
    it('really slides on the wall clock', async () => {
      const store = ctx().openStore();
      const rule = { limit: 1, windowMs: 120 };
      expect((await store.take('wall', 1, rule)).granted).toBe(true);
      const refused = (await store.take('wall', 1, rule)) as Extract<WindowedTake, { granted: false }>;
      expect(refused.granted).toBe(false);
      await new Promise((r) => setTimeout(r, refused.retryAfterMs + 20));
      expect((await store.take('wall', 1, rule)).granted).toBe(true);
    });
  }
}

describe('WindowedCounterStore [memory]', () => {
  counterContract(
    () => ({
      shared: false,
      openStore: (now) => new MemoryWindowedCounterStore(now ? { now } : {}),
      async close() {},
    }),
    'memory',
  );
});

describeRepositoryContract<CounterCtx>(
  'WindowedCounterStore',
  {
    async sqlite({ file }) {
      const dbs: SqliteDatabase[] = [];
      return {
        shared: true,
        openStore(now) {
          const db = openSqlite(file, { migrations: [] });
          dbs.push(db);
          return new SqliteWindowedCounterStore(db, now ? { now } : {});
        },
        async close() {
          for (const db of dbs) db.close();
        },
      };
    },
    async mongo({ url, database }) {
      const handles: Promise<MongoHandle>[] = [];
      return {
        shared: true,
        openStore(now) {
          // Lazily connected so openStore stays synchronous; each store gets its own client.
          const handle = connectMongo({ url, database, appName: 'counter-test', serverSelectionTimeoutMs: 5000 });
          handles.push(handle);
          const ready = handle.then((h) => new MongoWindowedCounterStore(h.db, now ? { now } : {}));
          return {
            take: async (...args) => (await ready).take(...args),
            purgeExpired: async () => (await ready).purgeExpired(),
          };
        },
        async close() {
          await Promise.all(handles.map(async (h) => (await h).close()));
        },
      };
    },
  },
  counterContract,
);
