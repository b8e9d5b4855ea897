import { StorageError } from './errors';

/** A claim on a key: the holder runs the work, then completes or releases the claim. */
export interface IdempotencyClaim {
  readonly key: string;
  /** Unique per claim; completing or releasing a claim that was taken over changes nothing. */
  readonly token: string;
}

/** What `claim` found. Fingerprints are the callers': the store compares none of them. */
export type IdempotencyClaimResult =
  | { readonly status: 'claimed'; readonly claim: IdempotencyClaim }
  /** Another claim is running (not expired): wait for it, or refuse. */
  | { readonly status: 'running'; readonly fingerprint: string; readonly claimExpiresAt: number }
  /** The work was done within the retention time: its response. */
  | { readonly status: 'completed'; readonly fingerprint: string; readonly response: string };

export interface IdempotencyClaimOptions {
  /** Fingerprint of the request the claim is for (stored, returned to later callers). */
  readonly fingerprint: string;
  /** After this long an unfinished claim counts as crashed, and the next caller may claim the key again. */
  readonly claimTtlMs: number;
}

/**
 * Port: remembers, per key, that some work is running or what it answered, for every process that opens the same
 * database — so a retried mutation runs at most once per key at a time, and not again once done, whichever replica
 * the retry reaches. Keys and fingerprints should be hashes: stores keep them for the retention time.
 *
 * `claim` is atomic against concurrent claims from any process: of several callers finding the key free, released,
 * expired or held by an expired claim, exactly one gets `claimed`. A claim that outlives its ttl can be taken over,
 * so the ttl must be much longer than the work (and than clock skew between hosts).
 */
export interface IdempotencyStore {
  /** Claims `key` if it is free, or says what holds it. @throws StorageError STORAGE_INVALID_ARGUMENT */
  claim(key: string, options: IdempotencyClaimOptions): Promise<IdempotencyClaimResult>;
  /**
   * Records the claim's response (kept `ttlMs`); a no-op when the claim was released or taken over.
   * @returns false when it was a no-op
   */
  complete(claim: IdempotencyClaim, response: string, ttlMs: number): Promise<boolean>;
  /** Gives the key up (the work failed and may be retried); a no-op when the claim was taken over. */
  release(claim: IdempotencyClaim): Promise<void>;
  /** Deletes records past their retention; returns how many went. */
  purgeExpired(): Promise<number>;
}

export interface IdempotencyStoreOptions {
  /** Clock in epoch ms (default Date.now); claims compare clocks of several hosts, so keep them NTP-synced. */
  readonly now?: () => number;
  /** How often a store deletes expired records on its own while claiming (default every 10 minutes). */
  readonly purgeEveryMs?: number;
}

const MAX_KEY_LENGTH = 512;
const MAX_FINGERPRINT_LENGTH = 512;

export function checkClaimArgs(key: string, options: IdempotencyClaimOptions): void {
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `idempotency key must be 1–${MAX_KEY_LENGTH} characters`);
  }
  if (typeof options.fingerprint !== 'string' || options.fingerprint.length > MAX_FINGERPRINT_LENGTH) {
    throw new StorageError(
      'STORAGE_INVALID_ARGUMENT',
      `idempotency fingerprint must be at most ${MAX_FINGERPRINT_LENGTH} characters`,
    );
  }
  checkTtl('claim ttl', options.claimTtlMs);
}

export function checkTtl(what: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `idempotency ${what} must be a positive number of milliseconds`);
  }
}
