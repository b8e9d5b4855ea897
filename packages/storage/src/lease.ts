/**
 * A lease makes one instance of a singleton (outbox relay, retention sweep, tree-head signer, audit writer)
 * the active one. Each acquisition gets a strictly larger fencing token; a writer passes its token along
 * with every write so a store can refuse a holder whose lease has since been taken over.
 *
 * Clocks: `expiresAt` is epoch milliseconds from the clock of the instance that wrote it, and expiry is judged
 * by the clock of the instance that reads it, so hosts must be NTP-synced and ttl must be much larger than the
 * worst skew plus a store round-trip (e.g. ttl 30 s for skew well under 1 s). Skew can only make two holders
 * overlap briefly; fencing tokens still order their writes.
 */
export interface LeaseGrant {
  readonly name: string;
  readonly holder: string;
  /** Strictly increasing across acquisitions of the same lease name; unchanged by renewals. */
  readonly token: number;
  /** Epoch milliseconds after which another holder may take the lease. */
  readonly expiresAt: number;
}

export interface LeaseStore {
  /**
   * Takes the lease if free, released or expired (with a new, larger token — also for its previous holder), or
   * extends it if `holder` holds it and it has not expired (same token); null when someone else holds it.
   */
  tryAcquire(name: string, holder: string, ttlMs: number): Promise<LeaseGrant | null>;
  /** Extends a held lease; null when it was lost: expired (taken or not), taken over, or released. */
  renew(grant: LeaseGrant, ttlMs: number): Promise<LeaseGrant | null>;
  /** Releases the lease if still held with this token; a no-op otherwise. */
  release(grant: LeaseGrant): Promise<void>;
}
