import { randomUUID } from 'node:crypto';
import { type Collection, type Db, MongoServerError } from 'mongodb';
import { StorageError } from './errors';
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
 * One state of a key's window: `_id` is `<key>#<seq>`, and each granted take inserts the next seq computed from the
 * newest one, so two concurrent takes collide on insert and the loser recomputes.
 */
interface WindowStateDoc {
  _id: string;
  key: string;
  seq: number;
  /** Random id of this state, and of the state it was computed from (to tell a successor from a stale chain). */
  nonce: string;
  prev: string | null;
  slices: WindowSlice[];
  /** Epoch ms after which this state holds nothing (its last slice has left the window). */
  expiresAt: number;
}

export interface MongoWindowedCounterStoreOptions extends WindowedCounterStoreOptions {
  /** Collection name (default `windowed_counters`). */
  readonly collection?: string;
  /** Recomputations after collisions before a take gives up with STORAGE_CONTENDED (default 200). */
  readonly maxAttempts?: number;
}

// Older states are deleted, but only well behind the newest, so a late writer still collides on `_id`.
const KEEP_STATES = 16;
const TRIM_EVERY = 8;
// Emptied windows are deleted only this long after they emptied, so a writer stalled in between cannot restart a
// key's chain from a state it read before the purge.
const PURGE_GRACE_MS = 60 * 60_000;

/**
 * WindowedCounterStore over a MongoDB collection, as an append-only chain of states per key.
 *
 * Why not one document per key updated with `{$inc}` under a guard such as `{used: {$lte: limit - units}}`: FerretDB
 * v1 (the CI server) applies an update by reading, changing and writing the document in separate steps. Measured
 * against it: 200 concurrent guarded `$inc`s with a limit of 50 were all "modified" and left `used: 4`; 200 plain
 * `$inc`s left 2. An insert that collides on `_id` is atomic everywhere, so the chain needs nothing else. Nor TTL
 * indexes (FerretDB v1: "expireAfterSeconds is not implemented yet"): emptied windows are purged explicitly.
 */
export class MongoWindowedCounterStore implements WindowedCounterStore {
  private readonly states: Collection<WindowStateDoc>;
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly purges: PurgeSchedule;
  private indexed: Promise<unknown> | undefined;
  /** Takes of one key from this process wait for each other, so only other processes' takes can collide. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(db: Db, options: MongoWindowedCounterStoreOptions = {}) {
    this.states = db.collection<WindowStateDoc>(options.collection ?? 'windowed_counters');
    this.now = options.now ?? Date.now;
    this.maxAttempts = options.maxAttempts ?? 200;
    this.purges = new PurgeSchedule(options.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS, this.now());
  }

  async take(key: string, units: number, rule: WindowRule): Promise<WindowedTake> {
    checkTakeArgs(key, units, rule);
    const before = this.queues.get(key) ?? Promise.resolve();
    const mine = before.then(
      () => this.takeNow(key, units, rule),
      () => this.takeNow(key, units, rule),
    );
    const settled = mine.catch(() => undefined);
    this.queues.set(key, settled);
    try {
      return await mine;
    } finally {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    }
  }

  private async takeNow(key: string, units: number, rule: WindowRule): Promise<WindowedTake> {
    await this.ensureIndexes();
    if (this.purges.due(this.now())) await this.purgeExpired();
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) await backoff(attempt);
      const newest = await this.states.find({ key }).sort({ seq: -1 }).limit(1).next();
      const now = this.now();
      const held = newest && newest.expiresAt > now ? newest.slices : [];
      const { take, slices } = takeFromWindow(held, now, units, rule);
      if (!take.granted) return take;
      const seq = (newest?.seq ?? 0) + 1;
      const state: WindowStateDoc = {
        _id: `${key}#${seq}`,
        key,
        seq,
        nonce: randomUUID(),
        prev: newest?.nonce ?? null,
        slices,
        expiresAt: windowExpiresAt(slices, rule),
      };
      try {
        await this.states.insertOne(state);
      } catch (err) {
        if (err instanceof MongoServerError && err.code === 11000) continue; // another take got this seq first
        throw err;
      }
      if (await this.stale(state)) {
        // Our seq had been trimmed and the chain had moved on past it: withdraw and recompute from the newest.
        await this.states.deleteOne({ _id: state._id, nonce: state.nonce });
        continue;
      }
      if (seq % TRIM_EVERY === 0) await this.states.deleteMany({ key, seq: { $lte: seq - KEEP_STATES } });
      return take;
    }
    throw new StorageError(
      'STORAGE_CONTENDED',
      `windowed counter: ${this.maxAttempts} concurrent takes of one key won before this one; retry`,
    );
  }

  async purgeExpired(): Promise<number> {
    await this.ensureIndexes();
    const result = await this.states.deleteMany({ expiresAt: { $lt: this.now() - PURGE_GRACE_MS } });
    return result.deletedCount;
  }

  /** True when a state after ours exists that was not computed from ours. */
  private async stale(state: WindowStateDoc): Promise<boolean> {
    const after = await this.states
      .find({ key: state.key, seq: { $gt: state.seq } })
      .sort({ seq: 1 })
      .limit(1)
      .next();
    return after !== null && !(after.seq === state.seq + 1 && after.prev === state.nonce);
  }

  private ensureIndexes(): Promise<unknown> {
    this.indexed ??= (async () => {
      await this.states.createIndex({ key: 1, seq: -1 }, { name: 'key_seq' });
      await this.states.createIndex({ expiresAt: 1 }, { name: 'expires_at' });
    })().catch((err: unknown) => {
      this.indexed = undefined; // retried by the next call
      throw err;
    });
    return this.indexed;
  }
}

/** A short, growing, jittered pause so colliding takes spread out instead of colliding again. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(20, 1 + attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
