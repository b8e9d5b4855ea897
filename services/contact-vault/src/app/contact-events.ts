import { createEnvelope, eventSubject, type EventEnvelope } from '@sealpost/bus';
import { eventsV1 } from '@sealpost/proto';
import type { StoredContact } from '../ports/contact-repository';

/** Event type and subject token of an upsert (subject tokens cannot hold dots). */
export const CONTACT_UPSERTED = { type: 'vault.contact.upserted', token: 'contact_upserted' } as const;

/** `vault.contact.upserted` for a stored contact: ids, field kinds and the aggregate version — no values. */
export function contactUpsertedEvent(contact: StoredContact, created: boolean): EventEnvelope {
  const payload = eventsV1.ContactUpserted.encode({
    tenantId: contact.tenantId,
    contactId: contact.contactId,
    created,
    fieldKinds: [...contact.fieldKinds],
    occurredAt: contact.updatedAt,
  }).finish();
  return createEnvelope({
    type: CONTACT_UPSERTED.type,
    subject: eventSubject('vault', contact.tenantId, CONTACT_UPSERTED.token),
    tenant: contact.tenantId,
    aggregateId: contact.contactId,
    aggregateVersion: contact.version,
    occurredAt: contact.updatedAt,
    payload,
  });
}
