import { createEnvelope, eventSubject, newEventId, type EventEnvelope } from '@sealpost/bus';
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

/** Event type and subject token of a reveal (or export) of a contact's plaintext. */
export const CONTACT_REVEALED = { type: 'vault.contact.revealed', token: 'contact_revealed' } as const;

/**
 * `vault.contact.revealed`: who saw which contact's plaintext and why — ids and the purpose code, never values.
 * Each reveal is its own aggregate (the id of its audit event, version 1): reveals do not change the contact, so
 * they must not compete with its upserted/erased versions in an apply-once consumer.
 */
export function contactRevealedEvent(input: {
  tenantId: string;
  contactId: string;
  actorId: string;
  purposeCode: string;
  at: Date;
}): EventEnvelope {
  const payload = eventsV1.ContactRevealed.encode({
    tenantId: input.tenantId,
    contactId: input.contactId,
    actorId: input.actorId,
    purposeCode: input.purposeCode,
    occurredAt: input.at,
  }).finish();
  const id = newEventId();
  return createEnvelope({
    id,
    type: CONTACT_REVEALED.type,
    subject: eventSubject('vault', input.tenantId, CONTACT_REVEALED.token),
    tenant: input.tenantId,
    aggregateId: `reveal:${id}`,
    aggregateVersion: 1,
    occurredAt: input.at,
    payload,
  });
}
