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

/** Event type and subject token of an erasure. */
export const CONTACT_ERASED = { type: 'vault.contact.erased', token: 'contact_erased' } as const;

/** `vault.contact.erased`: ids, whether a suppression tombstone was kept, and the tombstone's aggregate version. */
export function contactErasedEvent(input: {
  tenantId: string;
  contactId: string;
  erasureId: string;
  suppressionKept: boolean;
  version: number;
  at: Date;
}): EventEnvelope {
  const payload = eventsV1.ContactErased.encode({
    tenantId: input.tenantId,
    contactId: input.contactId,
    erasureId: input.erasureId,
    suppressionTombstoneKept: input.suppressionKept,
    occurredAt: input.at,
  }).finish();
  return createEnvelope({
    type: CONTACT_ERASED.type,
    subject: eventSubject('vault', input.tenantId, CONTACT_ERASED.token),
    tenant: input.tenantId,
    aggregateId: input.contactId,
    aggregateVersion: input.version,
    occurredAt: input.at,
    payload,
  });
}
