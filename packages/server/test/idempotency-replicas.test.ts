/**
 * Request-id idempotency across replicas: two `createIdempotency` instances, each over its own connection to one
 * database (SQLite file / MongoDB-wire database), behave as one — a retry that lands on the other replica gets the
 * first response, a concurrent duplicate never runs the mutation twice, a crashed execution does not block forever.
 */
import {
  connectMongo,
  MemoryIdempotencyStore,
  MongoIdempotencyStore,
  openSqlite,
  SqliteIdempotencyStore,
  type IdempotencyStore,
  type MongoHandle,
  type SqliteDatabase,
} from '@sealpost/storage';
import { describeRepositoryContract } from '@sealpost/storage/testing';
import { createIdempotency, type Idempotency, type IdempotencyOptions } from '../src/index';

interface ReplicasCtx {
  /** A store on its own connection: what one replica opens. */
  openStore(): IdempotencyStore;
  /** Everything the database holds, as text. */
  dump(): Promise<string>;
  close(): Promise<void>;
}

const PRINCIPAL = 'spiffe://sealpost.test/crm';
const METHOD = '/sealpost.vault.v1.ContactVault/UpsertContact';
const key = (requestId: string) => ({ principal: PRINCIPAL, method: METHOD, requestId });

function replicasSuite(ctx: () => ReplicasCtx): void {
  const replica = (options: Partial<IdempotencyOptions> = {}): Idempotency =>
    createIdempotency({ store: ctx().openStore(), ttlMs: 60_000, ...options });

  it('runs a mutation once when the same request id reaches two replicas at the same time', async () => {
    const [a, b] = [replica(), replica()];
    let runs = 0;
    const mutation = async () => {
      runs++;
      await sleep(150);
      return { contactId: 'c_1', created: true, version: 1 };
    };
    const results = await Promise.all([
      a.run(key('req-concurrent-1'), { email: 'hmac-1' }, mutation),
      b.run(key('req-concurrent-1'), { email: 'hmac-1' }, mutation),
      b.run(key('req-concurrent-1'), { email: 'hmac-1' }, mutation),
    ]);
    expect(runs).toBe(1);
    expect(results).toEqual([results[0], results[0], results[0]]);
  });

  it('answers a retry on the other replica (or after a restart) with the first response', async () => {
    const a = replica();
    const mutation = jest.fn(async () => ({ contactId: 'c_2', created: true, version: 1 }));
    const first = await a.run(key('req-retry-0001'), { email: 'hmac-2' }, mutation);
    const restarted = replica();
    expect(await restarted.run(key('req-retry-0001'), { email: 'hmac-2' }, mutation)).toEqual(first);
    expect(mutation).toHaveBeenCalledTimes(1);
    await expect(restarted.run(key('req-retry-0001'), { email: 'hmac-3' }, mutation)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      reason: 'REQUEST_ID_REUSED',
    });
    // Another principal's request id is another key.
    await replica().run({ ...key('req-retry-0001'), principal: 'op-2' }, { email: 'hmac-3' }, mutation);
    expect(mutation).toHaveBeenCalledTimes(2);
  });

  it('tells a duplicate that outwaits a long execution elsewhere to retry, then answers the retry', async () => {
    const a = replica();
    const b = replica({ waitMs: 100 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started = signal();
    const running = a.run(key('req-slow-0001'), { x: 1 }, async () => {
      started.fire();
      await gate;
      return 'done';
    });
    await started.fired;
    const mutation = jest.fn(async () => 'second');
    await expect(b.run(key('req-slow-0001'), { x: 1 }, mutation)).rejects.toMatchObject({
      code: 'ABORTED',
      reason: 'REQUEST_IN_PROGRESS',
    });
    // A different request under the running id is refused at once, not made to wait.
    await expect(b.run(key('req-slow-0001'), { x: 2 }, mutation)).rejects.toMatchObject({
      reason: 'REQUEST_ID_REUSED',
    });
    release();
    expect(await running).toBe('done');
    expect(await b.run(key('req-slow-0001'), { x: 1 }, mutation)).toBe('done');
    expect(mutation).not.toHaveBeenCalled();
  });

  it('lets another replica run a request whose execution failed', async () => {
    const a = replica();
    const b = replica();
    await expect(
      a.run(key('req-failed-001'), { x: 1 }, async () => Promise.reject(new Error('unavailable'))),
    ).rejects.toThrow('unavailable');
    expect(await b.run(key('req-failed-001'), { x: 1 }, async () => 'ran on b')).toBe('ran on b');
  });

  it('runs the request again once a crashed execution has outlived its claim', async () => {
    // A replica that crashed mid-mutation: it claimed the request id and never completed or released it.
    // Long enough that the first retry below surely comes before it ends, even on a loaded machine.
    const crashedClaimTtl = 1500;
    const crashed = replica({ claimTtlMs: crashedClaimTtl });
    const started = signal();
    void crashed.run(key('req-crashed-01'), { x: 1 }, () => {
      started.fire();
      return new Promise<never>(() => undefined);
    });
    await started.fired;
    const claimedBy = Date.now();
    const b = replica({ waitMs: 50 });
    await expect(b.run(key('req-crashed-01'), { x: 1 }, async () => 'too early')).rejects.toMatchObject({
      reason: 'REQUEST_IN_PROGRESS',
    });
    await sleep(claimedBy + crashedClaimTtl - Date.now() + 20);
    expect(await b.run(key('req-crashed-01'), { x: 1 }, async () => 'recovered')).toBe('recovered');
  });

  it('stores neither the principal, the method nor the request id', async () => {
    await replica().run(key('req-private-42'), { email: 'hmac-4' }, async () => ({ contactId: 'c_4' }));
    const stored = await ctx().dump();
    expect(stored).toContain('c_4');
    for (const secret of [PRINCIPAL, 'UpsertContact', 'req-private-42']) expect(stored).not.toContain(secret);
  });
}

describe('idempotency across replicas [one shared memory store]', () => {
  // Two Idempotency instances over one store object: the cross-replica logic without a database.
  let store: MemoryIdempotencyStore;
  beforeEach(() => {
    store = new MemoryIdempotencyStore();
  });
  const dumpOf = (s: MemoryIdempotencyStore) =>
    JSON.stringify([...(s as unknown as { entries: Map<string, unknown> }).entries]);
  replicasSuite(() => ({ openStore: () => store, dump: async () => dumpOf(store), close: async () => undefined }));
});

describeRepositoryContract<ReplicasCtx>(
  'idempotency across replicas',
  {
    async sqlite({ file }) {
      const dbs: SqliteDatabase[] = [];
      const open = () => {
        const db = openSqlite(file, { migrations: [] });
        dbs.push(db);
        return db;
      };
      return {
        openStore: () => new SqliteIdempotencyStore(open()),
        async dump() {
          return JSON.stringify(open().prepare('SELECT * FROM _idempotency').all());
        },
        async close() {
          for (const db of dbs) db.close();
        },
      };
    },
    async mongo({ url, database, db }) {
      const handles: Promise<MongoHandle>[] = [];
      return {
        openStore() {
          const handle = connectMongo({
            url,
            database,
            appName: 'idempotency-replica',
            serverSelectionTimeoutMs: 5000,
          });
          handles.push(handle);
          const ready = handle.then((h) => new MongoIdempotencyStore(h.db));
          return {
            claim: async (...args) => (await ready).claim(...args),
            complete: async (...args) => (await ready).complete(...args),
            release: async (...args) => (await ready).release(...args),
            purgeExpired: async () => (await ready).purgeExpired(),
          };
        },
        async dump() {
          return JSON.stringify(await db.collection('idempotency').find({}).toArray());
        },
        async close() {
          await Promise.all(handles.map(async (h) => (await h).close()));
        },
      };
    },
  },
  replicasSuite,
);

/** A one-shot signal: the test waits for `fired` until the code under test calls `fire()`. */
function signal(): { fire(): void; fired: Promise<void> } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
