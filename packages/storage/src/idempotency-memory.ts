import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import {
  checkClaimArgs,
  checkTtl,
  type IdempotencyClaim,
  type IdempotencyClaimOptions,
  type IdempotencyClaimResult,
  type IdempotencyStore,
} from './idempotency-store';

interface Entry {
  token: string;
  fingerprint: string;
  state: 'running' | 'completed';
  response?: string;
  claimExpiresAt: number;
  /** When the entry stops counting: the claim's expiry while running, retention end once completed. */
  expiresAt: number;
}

export interface MemoryIdempotencyStoreOptions {
  /** Most entries kept; the least recently used go first (default 10,000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * IdempotencyStore in this process's memory, bounded as an LRU: one process only (tests, tools). Replicas, and a
 * process that restarts, need the SQLite or MongoDB store, or a retry that lands elsewhere runs again.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new StorageError('STORAGE_INVALID_ARGUMENT', 'maxEntries must be a positive integer');
    }
  }

  async claim(key: string, options: IdempotencyClaimOptions): Promise<IdempotencyClaimResult> {
    checkClaimArgs(key, options);
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.touch(key, entry);
      if (entry.state === 'completed') {
        return { status: 'completed', fingerprint: entry.fingerprint, response: entry.response ?? '' };
      }
      return { status: 'running', fingerprint: entry.fingerprint, claimExpiresAt: entry.claimExpiresAt };
    }
    const token = randomUUID();
    const claimExpiresAt = now + options.claimTtlMs;
    this.touch(key, {
      token,
      fingerprint: options.fingerprint,
      state: 'running',
      claimExpiresAt,
      expiresAt: claimExpiresAt,
    });
    return { status: 'claimed', claim: { key, token } };
  }

  async complete(claim: IdempotencyClaim, response: string, ttlMs: number): Promise<boolean> {
    checkTtl('ttl', ttlMs);
    const entry = this.entries.get(claim.key);
    if (!entry || entry.token !== claim.token || entry.state !== 'running') return false;
    this.touch(claim.key, { ...entry, state: 'completed', response, expiresAt: this.now() + ttlMs });
    return true;
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    const entry = this.entries.get(claim.key);
    if (entry && entry.token === claim.token && entry.state === 'running') this.entries.delete(claim.key);
  }

  async purgeExpired(): Promise<number> {
    const now = this.now();
    let purged = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(key);
        purged++;
      }
    }
    return purged;
  }

  /** Entries held, expired or not. */
  get size(): number {
    return this.entries.size;
  }

  private touch(key: string, entry: Entry): void {
    // Most recently used goes last; the oldest go first once over the bound.
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
