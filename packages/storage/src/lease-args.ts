import { StorageError } from './errors';

export interface LeaseStoreOptions {
  /**
   * Clock in epoch ms (default Date.now). Expiry compares the caller's clock with the one of the previous holder,
   * so hosts must be NTP-synced and ttl must be much larger than the worst skew (seconds vs. tens of seconds).
   */
  readonly now?: () => number;
}

export function checkLeaseArgs(name: string, holder: string, ttlMs: number): void {
  if (typeof name !== 'string' || name === '' || name.length > 200) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'lease name must be 1–200 characters');
  }
  if (typeof holder !== 'string' || holder === '' || holder.length > 200) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'lease holder must be 1–200 characters');
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `lease ttl ${String(ttlMs)} ms is not a positive integer`);
  }
}
