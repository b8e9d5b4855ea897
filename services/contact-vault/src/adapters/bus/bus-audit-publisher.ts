import { auditSubject, createEnvelope, newEventId, type EventPublisher } from '@sealpost/bus';
import { auditEventsV1 } from '@sealpost/proto';
import { VaultError } from '../../domain';
import type { AuditPublisher, VaultAuditEvent } from '../../ports/audit-publisher';

/** Subject token of an audit action: dots are not allowed in subject tokens, so they become underscores. */
export function auditActionToken(action: string): string {
  return action.replace(/\./g, '_');
}

/**
 * Publishes the vault's audit events on `sealpost.audit.vault.<tenant>.<action token>` with a fresh event id per
 * call (payload `event_id` = envelope id, as the audit service requires). Resolves only after the bus stored it;
 * a failure or a `duplicate` acknowledgement is AUDIT_UNAVAILABLE, so callers fail closed.
 */
export class BusAuditPublisher implements AuditPublisher {
  constructor(private readonly bus: EventPublisher) {}

  async record(event: VaultAuditEvent): Promise<string> {
    const id = newEventId();
    const occurredAt = new Date();
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
    const envelope = createEnvelope({
      id,
      type: 'audit.recorded',
      subject: auditSubject('contact-vault', event.tenantId, auditActionToken(event.action)),
      tenant: event.tenantId,
      aggregateId: event.tenantId,
      aggregateVersion: 1,
      occurredAt,
      payload,
    });
    let duplicate: boolean;
    try {
      duplicate = (await this.bus.publish(envelope)).duplicate;
    } catch (err) {
      throw new VaultError('AUDIT_UNAVAILABLE', 'the audit event was not accepted; nothing was returned', undefined, {
        cause: err,
      });
    }
    // A fresh id can only come back as a duplicate if something else used it: the grant is not provably ours.
    if (duplicate) throw new VaultError('AUDIT_UNAVAILABLE', 'the audit stream reported the event as a duplicate');
    return id;
  }
}
