import { VaultError, assertContactId, assertTenantId, type ContactFields } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import type { StoredContact } from '../ports/contact-repository';
import { contactRevealedEvent } from './contact-events';
import { openVerified } from './open-verified';
import type { VaultDeps } from './vault-deps';

/** Audit action of a reveal; subject token `contact_reveal`. */
export const REVEAL_AUDIT_ACTION = 'contact.reveal';

/** A validated purpose (from the access interceptor): a configured code and an optional ticket reference. */
export interface StatedPurpose {
  readonly code: string;
  readonly ticket?: string;
}

export interface RevealContactInput {
  readonly tenantId: string;
  readonly contactId: string;
  readonly actor: VaultAuditEvent['actor'];
  readonly purpose: StatedPurpose;
}

export interface RevealContactResult {
  readonly contactId: string;
  readonly fields: ContactFields;
  readonly auditEventId: string;
}

/**
 * Plaintext of one contact, fail closed: decrypt and verify the blind indexes (RECORD_SWAPPED), then record the
 * grant in the audit stream, with its `vault.contact.revealed` event, and return only once both were durably
 * acknowledged, the audit event with a fresh id (otherwise AUDIT_UNAVAILABLE and nothing is returned). Throws VaultError INVALID_ARGUMENT, CONTACT_NOT_FOUND, RECORD_SWAPPED,
 * AUDIT_UNAVAILABLE.
 */
export async function revealContact(
  deps: VaultDeps & { readonly audit: AuditPublisher },
  input: RevealContactInput,
  action: string = REVEAL_AUDIT_ACTION,
): Promise<RevealContactResult & { contact: StoredContact }> {
  assertTenantId(input.tenantId);
  assertContactId(input.contactId);
  if (!input.purpose || input.purpose.code === '')
    throw new VaultError('INVALID_ARGUMENT', 'purpose: is required', 'purpose');
  const contact = await deps.contacts.get(input.tenantId, input.contactId);
  if (!contact) throw new VaultError('CONTACT_NOT_FOUND', 'no contact with this id in this tenant', 'contact_id');
  const fields = await openVerified(deps, contact);
  const revealed = contactRevealedEvent({
    tenantId: input.tenantId,
    contactId: input.contactId,
    actorId: input.actor.id,
    purposeCode: input.purpose.code,
    at: new Date(),
  });
  const auditEventId = await deps.audit.record(
    {
      tenantId: input.tenantId,
      action,
      actor: input.actor,
      resourceIds: [input.contactId],
      purposeCode: input.purpose.code,
      ...(input.purpose.ticket ? { ticketRef: input.purpose.ticket } : {}),
      outcome: 'granted',
    },
    [revealed],
  );
  return { contactId: input.contactId, fields, auditEventId, contact };
}
