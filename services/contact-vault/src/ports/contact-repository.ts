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
  get(tenantId: string, contactId: string): Promise<StoredContact | undefined>;
  /** Inserts version 1 with `event` pending. Throws ContactExistsError. */
  create(contact: StoredContact, event: EventEnvelope): Promise<void>;
  /**
   * Replaces the contact if its stored version is `expectedVersion` (and adds `event` to its pending events);
   * false when the version moved or the contact is gone.
   */
  update(contact: StoredContact, expectedVersion: number, event: EventEnvelope): Promise<boolean>;
  /** Contacts of a tenant in id order (creation order), after `after`. */
  list(tenantId: string, options: { pageSize: number; after?: string }): Promise<ContactPage>;
  /** Where the outbox relay finds this repository's pending events. */
  outbox(): OutboxSource<unknown>;
}
