import type { EventEnvelope } from '@sealpost/bus';

/** One audit event of the vault: ids and codes only (DESIGN "Fail-closed access to plaintext"). */
export interface VaultAuditEvent {
  readonly tenantId: string;
  /** e.g. 'contact.find'; the subject token replaces dots with underscores. */
  readonly action: string;
  readonly actor: { readonly kind: 'operator' | 'service'; readonly id: string };
  readonly resourceIds: readonly string[];
  readonly purposeCode?: string;
  readonly ticketRef?: string;
  readonly outcome: 'granted' | 'denied' | 'failed' | 'succeeded';
}

/** An audit event as the audit log records it. */
export interface PublishedAuditEntry {
  /** The event id, which the audit log uses as the entry id. */
  readonly entryId: string;
  /**
   * The canonical, length-prefixed entry bytes the log's Merkle leaf hashes (leaf hash = SHA-256(0x00 ‖ these)).
   * Ids and codes only, like the event.
   */
  readonly canonical: Uint8Array;
}

/** Publishes the vault's audit events. */
export interface AuditPublisher {
  /**
   * Publishes under a fresh event id and resolves only once the audit stream durably accepted it; returns the id.
   * Throws VaultError AUDIT_UNAVAILABLE otherwise (a duplicate acknowledgement counts as failure).
   * `companions` are domain events stored in the same step (e.g. `vault.contact.revealed`): the call resolves only
   * once every one of them is durably accepted too, so a grant is never returned without its events.
   */
  record(event: VaultAuditEvent, companions?: readonly EventEnvelope[]): Promise<string>;
  /**
   * Publishes under a caller-chosen id and time (kept by the caller, e.g. with an operation), and resolves once the
   * audit stream durably accepted it or already held it: publishing the same event again — a resumed operation —
   * is accepted, because the stream and the audit log both deduplicate by id. Returns the entry as the log will
   * record it. Throws VaultError AUDIT_UNAVAILABLE.
   */
  publishEntry(event: VaultAuditEvent, eventId: string, occurredAt: Date): Promise<PublishedAuditEntry>;
}
