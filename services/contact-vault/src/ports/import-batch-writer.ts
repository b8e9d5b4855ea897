import type { EventEnvelope } from '@sealpost/bus';
import type { DataKeyStore, WrappedDataKey } from '@sealpost/crypto';
import type { StoredContact } from './contact-repository';
import type { IndexEntry, IndexKey } from './index-entry-repository';

/** Everything one import batch writes to the contact store, applied all-or-nothing. */
export interface ContactWriteBatch {
  /** Index entries a contact of the batch no longer owns; deleted (only while that contact owns them) first. */
  readonly releases: readonly { readonly key: IndexKey; readonly contactId: string }[];
  /** Index entries claimed for contacts of the batch (insert-if-absent; an entry owned by another contact fails). */
  readonly claims: readonly IndexEntry[];
  readonly creates: readonly { readonly contact: StoredContact; readonly events: readonly EventEnvelope[] }[];
  readonly updates: readonly {
    readonly contact: StoredContact;
    readonly expectedVersion: number;
    readonly events: readonly EventEnvelope[];
  }[];
}

/** A new contact's data key, to be stored with the others of its batch. */
export interface PendingDataKey {
  readonly tenantId: string;
  readonly contactId: string;
  readonly key: WrappedDataKey;
}

/**
 * Batched writes for bulk import (optional: a backend without it imports row by row). One atomic write per batch in
 * each store instead of one per row — with durable commits (fsync) that is what bounds import throughput.
 */
export interface ImportBatchWriter {
  /** The key store the batch's existing contacts' data keys are read from. */
  readonly dataKeys: DataKeyStore;
  /**
   * Optional: the stored data keys of these contacts of one tenant, in one read (absent ones left out). Without it
   * they are read one by one through `dataKeys`.
   */
  readDataKeys?(tenantId: string, contactIds: readonly string[]): Promise<ReadonlyMap<string, WrappedDataKey>>;
  /** Stores new contacts' data keys in one atomic write, create-if-absent (ids are fresh, so none exists). */
  putDataKeys(keys: readonly PendingDataKey[]): Promise<void>;
  /**
   * Applies the batch in one transaction. False — and nothing written — when a claim is owned by another contact
   * or an update's version moved (a concurrent writer): the caller then retries row by row.
   */
  writeContacts(batch: ContactWriteBatch): Promise<boolean>;
}
