import {
  connectMongo,
  LeaseKeeper,
  type LeaseGrant,
  type LeaseStore,
  MongoLeaseStore,
  openSqlite,
  SqliteLeaseStore,
  type MongoHandle,
  type SqliteDatabase,
} from '../src/index';
import { describeRepositoryContract } from '../src/testing';

interface LeaseCtx {
  /** A store on its own connection (a separate process, as far as the server can tell), with its own clock. */
  openStore(now?: () => number): LeaseStore;
  close(): Promise<void>;
}

const TTL = 10_000;

describeRepositoryContract<LeaseCtx>(
  'LeaseStore',
  {
    async sqlite({ file }) {
      const dbs: SqliteDatabase[] = [];
      return {
        openStore(now) {
          const db = openSqlite(file, { migrations: [] });
          dbs.push(db);
          return new SqliteLeaseStore(db, now ? { now } : {});
        },
        async close() {
          for (const db of dbs) db.close();
        },
      };
    },
    async mongo({ url, database }) {
      const handles: Promise<MongoHandle>[] = [];
      return {
        openStore(now) {
          // Lazily connected so openStore stays synchronous; each store gets its own client.
          const handle = connectMongo({ url, database, appName: 'lease-test', serverSelectionTimeoutMs: 5000 });
          handles.push(handle);
          return lazyStore(handle.then((h) => new MongoLeaseStore(h.db, now ? { now } : {})));
        },
        async close() {
          await Promise.all(handles.map(async (h) => (await h).close()));
        },
      };
    },
  },
  (ctx) => {
    let clock: number;
    const now = (): number => clock;
    beforeEach(() => {
      clock = 1_700_000_000_000;
    });

    it('grants a free lease with a positive token and expiry now+ttl', async () => {
      const grant = await ctx().openStore(now).tryAcquire('relay', 'a', TTL);
      expect(grant).toEqual({ name: 'relay', holder: 'a', token: expect.any(Number), expiresAt: clock + TTL });
      expect(grant!.token).toBeGreaterThanOrEqual(1);
    });

    it('renews for the holder, keeping the token and moving the expiry', async () => {
      const store = ctx().openStore(now);
      const first = (await store.tryAcquire('relay', 'a', TTL))!;
      clock += 3000;
      const renewed = await store.renew(first, TTL);
      expect(renewed).toEqual({ ...first, expiresAt: clock + TTL });
      clock += 3000;
      const again = await store.tryAcquire('relay', 'a', TTL);
      expect(again).toEqual({ ...first, expiresAt: clock + TTL });
    });

    it('is exclusive while held, also just before expiry', async () => {
      const a = ctx().openStore(now);
      const b = ctx().openStore(now);
      const grant = (await a.tryAcquire('relay', 'a', TTL))!;
      expect(await b.tryAcquire('relay', 'b', TTL)).toBeNull();
      clock = grant.expiresAt - 1;
      expect(await b.tryAcquire('relay', 'b', TTL)).toBeNull();
      // Other names are independent.
      expect(await b.tryAcquire('sweep', 'b', TTL)).not.toBeNull();
    });

    it('lets another holder take an expired lease with a larger token; the old holder is fenced off', async () => {
      const a = ctx().openStore(now);
      const b = ctx().openStore(now);
      const old = (await a.tryAcquire('relay', 'a', TTL))!;
      clock = old.expiresAt + 1;
      const taken = (await b.tryAcquire('relay', 'b', TTL))!;
      expect(taken.holder).toBe('b');
      expect(taken.token).toBeGreaterThan(old.token);
      expect(await a.renew(old, TTL)).toBeNull();
      await a.release(old); // a stale release must not free b's lease
      expect(await a.tryAcquire('relay', 'a', TTL)).toBeNull();
      expect(await b.renew(taken, TTL)).toEqual({ ...taken, expiresAt: clock + TTL });
    });

    it('counts an expired lease as lost even if nobody took it; re-acquiring gives a larger token', async () => {
      const a = ctx().openStore(now);
      const grant = (await a.tryAcquire('relay', 'a', TTL))!;
      clock = grant.expiresAt + 1;
      expect(await a.renew(grant, TTL)).toBeNull();
      const again = (await a.tryAcquire('relay', 'a', TTL))!;
      expect(again.token).toBeGreaterThan(grant.token);
      expect(await a.renew(grant, TTL)).toBeNull(); // the old grant stays fenced off
    });

    it('frees the lease on release; the next holder, even the same one, gets a larger token', async () => {
      const a = ctx().openStore(now);
      const b = ctx().openStore(now);
      const first = (await a.tryAcquire('relay', 'a', TTL))!;
      await a.release(first);
      expect(await a.renew(first, TTL)).toBeNull();
      const second = (await b.tryAcquire('relay', 'b', TTL))!;
      expect(second.token).toBeGreaterThan(first.token);
      await b.release(second);
      const third = (await a.tryAcquire('relay', 'a', TTL))!;
      expect(third.token).toBeGreaterThan(second.token);
    });

    it('keeps tokens strictly increasing over many changes of holder', async () => {
      const stores = [ctx().openStore(now), ctx().openStore(now), ctx().openStore(now)];
      const tokens: number[] = [];
      for (let i = 0; i < 20; i++) {
        const grant = (await stores[i % 3]!.tryAcquire('signer', `h${i % 3}`, TTL))!;
        tokens.push(grant.token);
        if (i % 2 === 0) await stores[i % 3]!.release(grant);
        else clock = grant.expiresAt + 1;
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    });

    it('gives a fresh lease to exactly one of 10 concurrent contenders', async () => {
      const contenders = Array.from({ length: 10 }, () => ctx().openStore(now));
      const results = await Promise.all(contenders.map((s, i) => s.tryAcquire('audit-writer', `c${i}`, TTL)));
      const winners = results.filter((g): g is LeaseGrant => g !== null);
      expect(winners).toHaveLength(1);
    });

    it('gives an expired lease to exactly one of 10 concurrent contenders, round after round', async () => {
      const contenders = Array.from({ length: 10 }, () => ctx().openStore(now));
      let last = (await ctx().openStore(now).tryAcquire('audit-writer', 'old', TTL))!;
      for (let round = 0; round < 5; round++) {
        clock = last.expiresAt + 1;
        const results = await Promise.all(contenders.map((s, i) => s.tryAcquire('audit-writer', `c${i}`, TTL)));
        const winners = results.filter((g): g is LeaseGrant => g !== null);
        expect(winners).toHaveLength(1);
        expect(winners[0]!.token).toBeGreaterThan(last.token);
        last = winners[0]!;
      }
    });

    it('lets exactly one of 10 contenders win when the holder renews at the same time', async () => {
      const holder = ctx().openStore(now);
      const grant = (await holder.tryAcquire('relay', 'h', TTL))!;
      clock = grant.expiresAt + 1;
      const contenders = Array.from({ length: 10 }, () => ctx().openStore(now));
      const [renewed, ...taken] = await Promise.all([
        holder.renew(grant, TTL),
        ...contenders.map((s, i) => s.tryAcquire('relay', `c${i}`, TTL)),
      ]);
      expect(renewed).toBeNull();
      expect(taken.filter((g) => g !== null)).toHaveLength(1);
    });

    it('really expires on the wall clock', async () => {
      const a = ctx().openStore();
      const b = ctx().openStore();
      const grant = (await a.tryAcquire('wall', 'a', 150))!;
      expect(await b.tryAcquire('wall', 'b', 150)).toBeNull();
      await sleep(Math.max(0, grant.expiresAt - Date.now()) + 30);
      expect((await b.tryAcquire('wall', 'b', 150))?.holder).toBe('b');
    });

    it('rejects a bad ttl, name or holder', async () => {
      const store = ctx().openStore(now);
      await expect(store.tryAcquire('relay', 'a', 0)).rejects.toThrow(/ttl/);
      await expect(store.tryAcquire('', 'a', TTL)).rejects.toThrow(/lease name/);
      await expect(store.tryAcquire('relay', '', TTL)).rejects.toThrow(/lease holder/);
    });

    describe('LeaseKeeper', () => {
      const keepers: LeaseKeeper[] = [];
      afterEach(async () => {
        await Promise.all(keepers.splice(0).map((k) => k.stop()));
      });
      const keeper = (opts: Omit<ConstructorParameters<typeof LeaseKeeper>[0], 'name' | 'ttlMs'>): LeaseKeeper => {
        const k = new LeaseKeeper({ name: 'singleton', ttlMs: 600, onError: () => undefined, ...opts });
        keepers.push(k);
        return k;
      };

      it('acquires, keeps renewing, keeps others out, and hands over on stop', async () => {
        const acquiredA: LeaseGrant[] = [];
        const acquiredB: LeaseGrant[] = [];
        const a = keeper({ store: ctx().openStore(), holder: 'a', onAcquired: (g) => void acquiredA.push(g) });
        a.start();
        await waitFor(() => acquiredA.length === 1);
        const firstExpiry = a.grant!.expiresAt;
        const b = keeper({ store: ctx().openStore(), holder: 'b', onAcquired: (g) => void acquiredB.push(g) });
        b.start();
        await sleep(900); // longer than the ttl: only renewals can have kept the lease with a
        expect(a.grant?.expiresAt).toBeGreaterThan(firstExpiry);
        expect(acquiredB).toHaveLength(0);
        expect(b.grant).toBeNull();
        await a.stop();
        expect(a.grant).toBeNull();
        await waitFor(() => acquiredB.length === 1);
        expect(acquiredB[0]!.token).toBeGreaterThan(acquiredA[0]!.token);
        expect(acquiredA).toHaveLength(1);
      });

      it('reports loss and aborts the tenure when the lease was taken over', async () => {
        const lost: string[] = [];
        let signal: AbortSignal | undefined;
        const store = ctx().openStore();
        const a = keeper({
          store,
          holder: 'a',
          renewEveryMs: 200,
          onAcquired: (_g, s) => void (signal = s),
          onLost: (g, reason) => void lost.push(`${g.holder}:${reason}`),
        });
        a.start();
        await waitFor(() => a.grant !== null);
        // A host whose clock runs ahead sees the lease as expired and takes it.
        const thief = ctx().openStore(() => Date.now() + 60_000);
        expect(await thief.tryAcquire('singleton', 'thief', 600_000)).not.toBeNull();
        await waitFor(() => lost.length === 1);
        expect(lost).toEqual(['a:taken']);
        expect(signal?.aborted).toBe(true);
        expect(a.grant).toBeNull();
      });

      it('gives the lease up as unreachable when renewals fail until it could expire', async () => {
        const lost: string[] = [];
        const errors: unknown[] = [];
        let failing = false;
        const real = ctx().openStore();
        const flaky: LeaseStore = {
          tryAcquire: (...args) => (failing ? Promise.reject(new Error('network down')) : real.tryAcquire(...args)),
          renew: (...args) => (failing ? Promise.reject(new Error('network down')) : real.renew(...args)),
          release: (...args) => real.release(...args),
        };
        const a = keeper({
          store: flaky,
          holder: 'a',
          onLost: (_g, reason) => void lost.push(reason),
          onError: (err) => void errors.push(err),
        });
        a.start();
        await waitFor(() => a.grant !== null);
        failing = true;
        await waitFor(() => lost.length === 1);
        expect(lost).toEqual(['unreachable']);
        expect(errors.length).toBeGreaterThanOrEqual(1);
        expect(a.grant).toBeNull();
      });
    });
  },
);

function lazyStore(ready: Promise<LeaseStore>): LeaseStore {
  return {
    tryAcquire: async (...args) => (await ready).tryAcquire(...args),
    renew: async (...args) => (await ready).renew(...args),
    release: async (...args) => (await ready).release(...args),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}
