import { auditActionToken, encodeAuditEntry, entryFromAuditEvent } from '@sealpost/audit-format';
import { auditSubject, createEnvelope, newEventId, type EventBatchPublisher, type EventEnvelope } from '@sealpost/bus';
import { auditEventsV1 } from '@sealpost/proto';
import { VaultError } from '../../domain';
import type { AuditPublisher, PublishedAuditEntry, VaultAuditEvent } from '../../ports/audit-publisher';

/** Subject token of an audit action (dots become underscores): the audit log's own mapping. */
export { auditActionToken };

function auditEnvelope(event: VaultAuditEvent, id: string, occurredAt: Date): EventEnvelope {
  const payload = auditEventsV1.AuditEvent.encode({
    eventId: id,
    tenantId: event.tenantId,
    action: event.action,
    actor:
      event.actor.kind === 'operator'
        ? { $case: 'operatorId', value: event.actor.id }
        : { $case: 'service', value: event.actor.id },
    resourceIds: [...event.resourceIds],
    purposeCode: event.purposeCode ?? '',
    ticketRef: event.ticketRef ?? '',
    outcome: event.outcome,
    traceId: '',
    occurredAt,
  }).finish();
  return createEnvelope({
    id,
    type: 'audit.recorded',
    subject: auditSubject('contact-vault', event.tenantId, auditActionToken(event.action)),
    tenant: event.tenantId,
    aggregateId: event.tenantId,
    aggregateVersion: 1,
    occurredAt,
    payload,
  });
}

/**
 * Publishes the vault's audit events on `sealpost.audit.vault.<tenant>.<action token>` (payload `event_id` =
 * envelope id, as the audit service requires). Resolves only after the bus stored the event; a failure is
 * AUDIT_UNAVAILABLE, so callers fail closed.
 */
export class BusAuditPublisher implements AuditPublisher {
  constructor(private readonly bus: EventBatchPublisher) {}

  /**
   * A fresh id per call; a `duplicate` acknowledgement is AUDIT_UNAVAILABLE. Companion events go in the same
   * publish (embedded: one transaction; JetStream: pipelined), so they add no round trip.
   */
  async record(event: VaultAuditEvent, companions: readonly EventEnvelope[] = []): Promise<string> {
    const id = newEventId();
    const envelopes = [auditEnvelope(event, id, new Date()), ...companions];
    let acks;
    try {
      acks = envelopes.length === 1 ? [await this.bus.publish(envelopes[0]!)] : await this.bus.publishMany(envelopes);
    } catch (err) {
      throw new VaultError('AUDIT_UNAVAILABLE', 'the audit event was not accepted; nothing was returned', undefined, {
        cause: err,
      });
    }
    // A fresh id can only come back as a duplicate if something else used it: the grant is not provably ours.
    if (acks.some((ack) => ack.duplicate)) {
      throw new VaultError('AUDIT_UNAVAILABLE', 'the audit stream reported the event as a duplicate');
    }
    return id;
  }

  /**
   * The caller's id and time; a `duplicate` acknowledgement is accepted — the id was chosen and kept by this
   * operation, and only the vault may publish on its audit subjects, so the copy held is an earlier attempt's.
   */
  async publishEntry(event: VaultAuditEvent, eventId: string, occurredAt: Date): Promise<PublishedAuditEntry> {
    const envelope = auditEnvelope(event, eventId, occurredAt);
    let canonical: Uint8Array;
    try {
      // The derivation (source service from the subject, fields from the payload) and encoding the audit service
      // appends with (@sealpost/audit-format), so these are the bytes its leaf hashes — checked again against the leaf
      // hash it later proves.
      canonical = encodeAuditEntry(
        entryFromAuditEvent({ id: envelope.id, subject: envelope.subject, payload: envelope.payload }),
      );
    } catch (err) {
      throw new VaultError(
        'AUDIT_UNAVAILABLE',
        'the audit log would refuse this event; nothing was published',
        undefined,
        {
          cause: err,
        },
      );
    }
    await this.publish(envelope);
    return { entryId: eventId, canonical };
  }

  /** Resolves to whether the bus reported a duplicate; AUDIT_UNAVAILABLE when it did not store the event. */
  private async publish(envelope: EventEnvelope): Promise<boolean> {
    try {
      return (await this.bus.publish(envelope)).duplicate;
    } catch (err) {
      throw new VaultError('AUDIT_UNAVAILABLE', 'the audit event was not accepted; nothing was returned', undefined, {
        cause: err,
      });
    }
  }
}
