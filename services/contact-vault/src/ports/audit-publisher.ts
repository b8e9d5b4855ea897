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

/**
 * Publishes audit events and resolves only once the audit stream durably accepted a fresh event; returns its id.
 * Throws VaultError AUDIT_UNAVAILABLE otherwise (a duplicate acknowledgement counts as failure).
 */
export interface AuditPublisher {
  record(event: VaultAuditEvent): Promise<string>;
}
