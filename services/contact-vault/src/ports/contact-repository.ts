import type { EventEnvelope, OutboxSource } from '@sealpost/bus';
import type { BlindIndex } from '@sealpost/crypto';

/**
 * One stored contact: ids, the sealed record (one AES-256-GCM ciphertext over all fields) and keyed blind
 * indexes — never a plaintext value, never a key. The data key lives in the separate key store.
 */
export interface StoredContact {
  readonly tenantId: string;
  readonly contactId: string;
  /** 1 on creation, +1 on every change; events carry it as the aggregate version. */
  readonly version: number;
  readonly record: Uint8Array;
  /** Names of the fields inside `record`, sorted (e.g. ['email', 'name']). */
  readonly fieldKinds: readonly string[];
  /** The contact's index values (keyed HMACs), so changes and erasure can release its index entries. */
  readonly indexes: readonly BlindIndex[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Last write or touch, for the retention sweep. */
  readonly lastActivityAt: Date;
}

/** What remains of an erased contact: ids only. */
export interface Tombstone {
  readonly erasureId: string;
  readonly erasedAt: Date;
}

export interface ContactPage {
  readonly contacts: StoredContact[];
  /** The last contact id of this page when more may follow. */
  readonly nextAfter?: string;
}

/** Thrown by `create` when the contact id already exists (a programming error: ids are random). */
export class ContactExistsError extends Error {
  override readonly name = 'ContactExistsError';
  readonly code = 'CONTACT_EXISTS';
}

/**
 * Contacts of every tenant; every read names the tenant, so one tenant's id never reaches another's contact.
 * Writes carry their pending event in the same atomic write (outbox), published later by the relay.
 */
export interface ContactRepository {
  /** The live contact; undefined when unknown or erased (a tombstone is not a contact). */
  get(tenantId: string, contactId: string): Promise<StoredContact | undefined>;
  /** The live contacts among `contactIds` of one tenant (any order; unknown and erased ones left out). */
  getMany(tenantId: string, contactIds: readonly string[]): Promise<StoredContact[]>;
  /** Inserts version 1 with `event` pending. Throws ContactExistsError. */
  create(contact: StoredContact, event: EventEnvelope): Promise<void>;
  /**
   * Replaces the contact if its stored version is `expectedVersion` (and adds `event` to its pending events);
   * false when the version moved or the contact is gone.
   */
  update(contact: StoredContact, expectedVersion: number, event: EventEnvelope): Promise<boolean>;
  /**
   * Replaces the contact at `expectedVersion` with a tombstone (ids, erasure id and time; no record, no indexes)
   * that carries `event` pending. False when the version moved or the contact is gone.
   */
  erase(
    tenantId: string,
    contactId: string,
    expectedVersion: number,
    tombstone: Tombstone,
    event: EventEnvelope,
  ): Promise<boolean>;
  /** The tombstone of an erased contact, if it was erased. */
  tombstone(tenantId: string, contactId: string): Promise<Tombstone | undefined>;
  /**
   * Replaces only the contact's index list while its version is still `version` (a re-index is bookkeeping, not a
   * change of the contact: no version bump, no event). False when the contact changed meanwhile.
   */
  replaceIndexes(
    tenantId: string,
    contactId: string,
    version: number,
    indexes: readonly BlindIndex[],
  ): Promise<boolean>;
  /** Live contacts whose last activity is before `before`, oldest first (retention). */
  listInactive(tenantId: string, before: Date, limit: number): Promise<StoredContact[]>;
  /** Contacts of a tenant in id order (creation order), after `after`. */
  list(tenantId: string, options: { pageSize: number; after?: string }): Promise<ContactPage>;
  /** Where the outbox relay finds this repository's pending events. */
  outbox(): OutboxSource<unknown>;
}
