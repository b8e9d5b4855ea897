import { sealpostMetrics, type BoundCounter } from '@sealpost/telemetry';

/** Bounds for cached plaintext keys: an entry is dropped at `maxAgeMs` or after `maxUses`, whichever first. */
export interface KeyCacheOptions {
  maxAgeMs: number;
  maxUses: number;
  /** Entries kept at most (oldest dropped first); default 10,000. */
  maxEntries?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
  /** The `kind` label of `sealpost_key_cache_total` (`kek`, `index`, ...); default `key`. */
  kind?: string;
}

/** Counters since construction. `loads` is the number of loader calls, i.e. KMS unwraps. */
export interface KeyCacheStats {
  hits: number;
  misses: number;
  loads: number;
  loadFailures: number;
  expiredByAge: number;
  expiredByUses: number;
  size: number;
}

interface Entry<T> {
  value: T;
  loadedAt: number;
  uses: number;
}

/**
 * Plaintext key cache bounded by age AND number of uses, with one in-flight load per id so a burst of
 * misses makes one KMS call. When a load fails (KMS outage) nothing is cached and the error propagates:
 * callers fail closed once the entry they relied on has expired.
 */
export class KeyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly inflight = new Map<string, Promise<T>>();
  private readonly maxAgeMs: number;
  private readonly maxUses: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private counters = { hits: 0, misses: 0, loads: 0, loadFailures: 0, expiredByAge: 0, expiredByUses: 0 };
  // One outcome per lookup that reaches the loader or a hit: `get` counts hit, miss or expired; `getCached`
  // counts only its hits (on a miss the caller's `get` counts it), so the hit ratio is hits / lookups.
  private readonly lookups: Readonly<Record<'hit' | 'miss' | 'expired', BoundCounter>>;

  constructor(options: KeyCacheOptions) {
    if (!(options.maxAgeMs > 0) || !Number.isInteger(options.maxUses) || options.maxUses < 1) {
      throw new RangeError('KeyCache needs maxAgeMs > 0 and an integer maxUses >= 1');
    }
    this.maxAgeMs = options.maxAgeMs;
    this.maxUses = options.maxUses;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
    const counter = sealpostMetrics('crypto').counter('sealpost_key_cache_total');
    const kind = options.kind ?? 'key';
    this.lookups = {
      hit: counter.bind({ kind, outcome: 'hit' }),
      miss: counter.bind({ kind, outcome: 'miss' }),
      expired: counter.bind({ kind, outcome: 'expired' }),
    };
  }

  /** Returns the cached value for `id` (counting one use) or loads it with `load`. Throws what `load` throws. */
  async get(id: string, load: () => Promise<T>): Promise<T> {
    const cached = this.take(id, true);
    if (cached !== undefined) {
      this.lookups.hit.add(1);
      return cached;
    }
    if (this.lastTakeExpired) this.lookups.expired.add(1);
    else this.lookups.miss.add(1);
    return this.miss(id, load);
  }

  /**
   * Synchronous hit path: the cached value (counting one use), or undefined when absent or expired — then
   * call `get`. Lets hot paths skip an async hop per lookup.
   *
   * `uses` > 1 takes that many uses at once (a batch handed to another thread), all or nothing: undefined when the
   * entry has fewer left, and the entry stays for smaller takes.
   */
  getCached(id: string, uses = 1): T | undefined {
    const cached = this.take(id, false, uses);
    if (cached !== undefined) this.lookups.hit.add(1);
    return cached;
  }

  private miss(id: string, load: () => Promise<T>): Promise<T> {
    this.counters.misses += 1;
    let pending = this.inflight.get(id);
    if (!pending) {
      pending = this.load(id, load);
      this.inflight.set(id, pending);
    }
    return pending;
  }

  /** Puts a value just created here (a freshly generated key), counting it as loaded now. */
  prime(id: string, value: T): void {
    this.store(id, value, 0);
  }

  /** Drops one id (e.g. after the key it holds was found to be invalid). */
  delete(id: string): void {
    this.entries.delete(id);
  }

  clear(): void {
    this.entries.clear();
  }

  stats(): KeyCacheStats {
    return { ...this.counters, size: this.entries.size };
  }

  /** Set by `take`: whether its undefined meant an expired entry (dropped) rather than none. */
  private lastTakeExpired = false;

  /**
   * A usable entry (counting one use), or undefined. `evict`: drop an expired entry and count it; without,
   * an expired entry is left for the `get` that follows, which counts it once (stats and metric alike).
   */
  private take(id: string, evict: boolean, uses = 1): T | undefined {
    this.lastTakeExpired = false;
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (this.now() - entry.loadedAt >= this.maxAgeMs) {
      if (!evict) return undefined;
      this.entries.delete(id);
      this.counters.expiredByAge += 1;
      this.lastTakeExpired = true;
      return undefined;
    }
    if (entry.uses >= this.maxUses) {
      if (!evict) return undefined;
      this.entries.delete(id);
      this.counters.expiredByUses += 1;
      this.lastTakeExpired = true;
      return undefined;
    }
    if (entry.uses + uses > this.maxUses) return undefined;
    entry.uses += uses;
    this.counters.hits += 1;
    return entry.value;
  }

  private async load(id: string, load: () => Promise<T>): Promise<T> {
    this.counters.loads += 1;
    try {
      const value = await load();
      // The caller that triggered the load uses the value once.
      this.store(id, value, 1);
      return value;
    } catch (error) {
      this.counters.loadFailures += 1;
      throw error;
    } finally {
      this.inflight.delete(id);
    }
  }

  private store(id: string, value: T, uses: number): void {
    this.entries.delete(id);
    this.entries.set(id, { value, loadedAt: this.now(), uses });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
