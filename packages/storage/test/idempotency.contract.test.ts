import {
  connectMongo,
  type IdempotencyClaim,
  type IdempotencyClaimResult,
  type IdempotencyStore,
  isStorageError,
  MemoryIdempotencyStore,
  MongoIdempotencyStore,
  openSqlite,
  SqliteIdempotencyStore,
  type MongoHandle,
  type SqliteDatabase,
} from '../src/index';
import { describeRepositoryContract, type ContractBackend } from '../src/testing';

interface IdempotencyCtx {
  /** A store on its own connection (another replica, as far as the server can tell) with the given clock. */
  openStore(now?: () => number): IdempotencyStore;
  /** False for memory: every store is its own process. */
  readonly shared: boolean;
  close(): Promise<void>;
}

const CLAIM_TTL = 30_000;
const TTL = 24 * 3_600_000;
const opts = (fingerprint: string) => ({ fingerprint, claimTtlMs: CLAIM_TTL });

function claimed(result: IdempotencyClaimResult): IdempotencyClaim {
  if (result.status !== 'claimed') throw new Error(`expected a claim, got ${result.status}`);
  return result.claim;
}

function idempotencyContract(ctx: () => IdempotencyCtx, backend: ContractBackend | 'memory'): void {
  let clock: number;
  const now = (): number => clock;
  beforeEach(() => {
    clock = 1_700_000_000_000;
  });

  it('claims a free key once; later callers see it running, then completed with its response', async () => {
    const store = ctx().openStore(now);
    const claim = claimed(await store.claim('k1', opts('fp-a')));
    expect(await store.claim('k1', opts('fp-a'))).toEqual({
      status: 'running',
      fingerprint: 'fp-a',
      claimExpiresAt: clock + CLAIM_TTL,
    });
    // The store compares no fingerprints: a different request sees what holds the key.
    expect(await store.claim('k1', opts('fp-b'))).toMatchObject({ status: 'running', fingerprint: 'fp-a' });
    const response = JSON.stringify({ v: { contactId: 'c_1', version: 3, note: 'ü→✓' } });
    expect(await store.complete(claim, response, TTL)).toBe(true);
    expect(await store.claim('k1', opts('fp-a'))).toEqual({ status: 'completed', fingerprint: 'fp-a', response });
    expect(await store.complete(claim, 'again', TTL)).toBe(false); // completes once
    expect(await store.claim('k2', opts('fp-a'))).toMatchObject({ status: 'claimed' }); // keys are independent
  });

  it('frees a released key for the next caller, and a released claim can no longer complete', async () => {
    const store = ctx().openStore(now);
    const first = claimed(await store.claim('k', opts('fp-a')));
    await store.release(first);
    const second = claimed(await store.claim('k', opts('fp-b')));
    expect(second.token).not.toBe(first.token);
    expect(await store.complete(first, 'stale', TTL)).toBe(false);
    await store.release(first); // a stale release does not free the new claim
    expect(await store.claim('k', opts('fp-b'))).toMatchObject({ status: 'running', fingerprint: 'fp-b' });
    expect(await store.complete(second, 'r2', TTL)).toBe(true);
    expect(await store.claim('k', opts('fp-b'))).toMatchObject({ status: 'completed', response: 'r2' });
  });

  it('lets the next caller take over a claim that outlived its ttl (a crashed holder); the old one is fenced', async () => {
    const store = ctx().openStore(now);
    const crashed = claimed(await store.claim('k', opts('fp-a')));
    clock += CLAIM_TTL - 1;
    expect((await store.claim('k', opts('fp-a'))).status).toBe('running');
    clock += 1;
    const taken = claimed(await store.claim('k', opts('fp-a')));
    expect(await store.complete(crashed, 'late', TTL)).toBe(false);
    expect(await store.claim('k', opts('fp-a'))).toMatchObject({ status: 'running' });
    expect(await store.complete(taken, 'r', TTL)).toBe(true);
    expect(await store.claim('k', opts('fp-a'))).toMatchObject({ status: 'completed', response: 'r' });
  });

  it('forgets a completed key after its retention', async () => {
    const store = ctx().openStore(now);
    await store.complete(claimed(await store.claim('k', opts('fp-a'))), 'r', 1000);
    clock += 999;
    expect((await store.claim('k', opts('fp-a'))).status).toBe('completed');
    clock += 1;
    expect((await store.claim('k', opts('fp-b'))).status).toBe('claimed');
  });

  // A memory store is one process's by definition.
  if (backend !== 'memory') {
    it('is one record for every process that opens the database', async () => {
      const a = ctx().openStore(now);
      const b = ctx().openStore(now);
      const claim = claimed(await a.claim('k', opts('fp-a')));
      expect((await b.claim('k', opts('fp-a'))).status).toBe('running');
      await a.complete(claim, 'r', TTL);
      expect(await b.claim('k', opts('fp-a'))).toMatchObject({ status: 'completed', response: 'r' });
    });
  }

  it('gives a free key to exactly one of 10 concurrent callers', async () => {
    const stores = ctx().shared ? Array.from({ length: 10 }, () => ctx().openStore(now)) : [ctx().openStore(now)];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => stores[i % stores.length]!.claim('hot', opts('fp'))),
    );
    expect(results.filter((r) => r.status === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'running')).toHaveLength(9);
  });

  it('gives a crashed claim to exactly one of 10 concurrent callers, round after round', async () => {
    const stores = ctx().shared ? Array.from({ length: 10 }, () => ctx().openStore(now)) : [ctx().openStore(now)];
    claimed(await stores[0]!.claim('hot', opts('fp')));
    for (let round = 0; round < 4; round++) {
      clock += CLAIM_TTL;
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => stores[i % stores.length]!.claim('hot', opts('fp'))),
      );
      expect(results.filter((r) => r.status === 'claimed')).toHaveLength(1);
    }
  });

  it('purges expired records and keeps live ones', async () => {
    const store = ctx().openStore(now);
    await store.complete(claimed(await store.claim('done-short', opts('f'))), 'r', 1000);
    claimed(await store.claim('crashed', opts('f')));
    await store.complete(claimed(await store.claim('done-long', opts('f'))), 'r', TTL);
    clock += CLAIM_TTL;
    expect(await store.purgeExpired()).toBe(2);
    expect(await store.purgeExpired()).toBe(0);
    expect(await store.claim('done-long', opts('f'))).toMatchObject({ status: 'completed' });
  });

  it('rejects a bad key, fingerprint or ttl, naming what is wrong', async () => {
    const store = ctx().openStore(now);
    const messageOf = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (isStorageError(e, 'STORAGE_INVALID_ARGUMENT') ? e.message : String(e)),
      );
    expect(await messageOf(store.claim('', opts('f')))).toMatch(/idempotency key/);
    expect(await messageOf(store.claim('k'.repeat(513), opts('f')))).toMatch(/idempotency key/);
    expect(await messageOf(store.claim('k', opts('f'.repeat(513))))).toMatch(/fingerprint/);
    expect(await messageOf(store.claim('k', { fingerprint: 'f', claimTtlMs: 0 }))).toMatch(/claim ttl/);
    const claim = claimed(await store.claim('k', opts('f')));
    expect(await messageOf(store.complete(claim, 'r', -1))).toMatch(/ttl/);
  });
}

describe('IdempotencyStore [memory]', () => {
  idempotencyContract(
    () => ({
      shared: false,
      openStore: (now) => new MemoryIdempotencyStore(now ? { now } : {}),
      async close() {},
    }),
    'memory',
  );

  it('evicts the least recently used key beyond its bound', async () => {
    const store = new MemoryIdempotencyStore({ maxEntries: 2 });
    const opts2 = { fingerprint: 'f', claimTtlMs: 60_000 };
    await store.complete(claimed(await store.claim('a', opts2)), '1', 60_000);
    await store.complete(claimed(await store.claim('b', opts2)), '2', 60_000);
    await store.claim('a', opts2); // a becomes most recent
    await store.claim('c', opts2);
    expect(store.size).toBe(2);
    expect((await store.claim('a', opts2)).status).toBe('completed');
    expect((await store.claim('b', opts2)).status).toBe('claimed');
  });
});

describeRepositoryContract<IdempotencyCtx>(
  'IdempotencyStore',
  {
    async sqlite({ file }) {
      const dbs: SqliteDatabase[] = [];
      return {
        shared: true,
        openStore(now) {
          const db = openSqlite(file, { migrations: [] });
          dbs.push(db);
          return new SqliteIdempotencyStore(db, now ? { now } : {});
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
          const handle = connectMongo({ url, database, appName: 'idempotency-test', serverSelectionTimeoutMs: 5000 });
          handles.push(handle);
          const ready = handle.then((h) => new MongoIdempotencyStore(h.db, now ? { now } : {}));
          return {
            claim: async (...args) => (await ready).claim(...args),
            complete: async (...args) => (await ready).complete(...args),
            release: async (...args) => (await ready).release(...args),
            purgeExpired: async () => (await ready).purgeExpired(),
          };
        },
        async close() {
          await Promise.all(handles.map(async (h) => (await h).close()));
        },
      };
    },
  },
  idempotencyContract,
);
