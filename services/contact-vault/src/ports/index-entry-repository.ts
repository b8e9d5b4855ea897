import type { BlindIndexFieldKind } from '@sealpost/crypto';

/** Identifies one index value: unique per (tenant, field kind, key version, normalisation version, value). */
export interface IndexKey {
  readonly tenantId: string;
  readonly fieldKind: BlindIndexFieldKind;
  readonly keyVersion: number;
  readonly normVersion: number;
  /** base64url HMAC-SHA-256 under the tenant's field-kind key: never the value itself. */
  readonly value: string;
}

/** An index value and the contact owning it. */
export interface IndexEntry extends IndexKey {
  readonly contactId: string;
  /** When the owner claimed it: a claim whose contact never got written is reclaimable after a grace period. */
  readonly claimedAt: Date;
}

export type ClaimResult = { readonly claimed: true } | { readonly claimed: false; readonly owner: IndexEntry };

/**
 * Index entries as their own documents/rows. Their uniqueness keeps dedupe right under concurrency: a value can
 * be claimed by one contact only, whichever writer gets there first (FerretDB v1 has no partial indexes, and a
 * contact may lack a phone, so the constraint cannot live on the contact document).
 */
export interface IndexEntryRepository {
  /** Insert-if-absent; on conflict returns the current owner (which may be this contact). */
  claim(entry: IndexEntry): Promise<ClaimResult>;
  find(key: IndexKey): Promise<IndexEntry | undefined>;
  /** The entries that exist among `keys` (any order; absent keys have none): one query for a whole import batch. */
  findMany(keys: readonly IndexKey[]): Promise<IndexEntry[]>;
  /** Deletes the entry only if `contactId` still owns it. Returns whether it did. */
  release(key: IndexKey, contactId: string): Promise<boolean>;
}
