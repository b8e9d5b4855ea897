/**
 * The mapping from an audit event on the bus (subject `sealpost.audit.<source>.<tenant>.<action token>`, payload an
 * `AuditEvent` protobuf) to the entry the log appends. The audit service appends what it returns; a publisher runs
 * the same mapping to know, before publishing, the canonical bytes the log's leaf will hash.
 */
import { auditEventsV1 } from '@sealpost/proto';
import { type AuditEntry, type AuditEntryRules, validateAuditEntry } from './canonical-entry';

/** Why an audit event was refused; each is a dead-letter reason code (no values, no free text). */
export type AuditEventRejection =
  'audit-bad-subject' | 'audit-bad-protobuf' | 'audit-subject-mismatch' | 'audit-invalid-entry';

/** An audit event that can never be appended; `reason` becomes the dead-letter reason. */
export class AuditEventRejectedError extends Error {
  override readonly name = 'AuditEventRejectedError';
  readonly code = 'AUDIT_EVENT_REJECTED';
  constructor(
    readonly reason: AuditEventRejection,
    message: string,
    readonly fields: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The subject token for an audit action: dots (not allowed in subject tokens) become underscores. */
export function auditActionToken(action: string): string {
  return action.replace(/\./g, '_');
}

const AUDIT_SUBJECT = /^sealpost\.audit\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})$/;

/** What the appender needs from a bus message. */
export interface AuditEventMessage {
  readonly id: string;
  readonly subject: string;
  readonly payload: Uint8Array;
}

/**
 * Turns one bus message into a validated entry. The source service comes from the subject (NATS permissions
 * make it unforgeable); tenant and action must agree between subject and payload, and the payload's event id,
 * when set, must be the envelope id (the dedupe key). Throws AuditEventRejectedError.
 */
export function entryFromAuditEvent(message: AuditEventMessage, rules: Partial<AuditEntryRules> = {}): AuditEntry {
  const m = AUDIT_SUBJECT.exec(message.subject);
  if (!m)
    throw new AuditEventRejectedError('audit-bad-subject', 'subject is not sealpost.audit.<source>.<tenant>.<action>');
  const [, source, tenant, actionToken] = m as unknown as [string, string, string, string];
  let event: auditEventsV1.AuditEvent;
  try {
    event = auditEventsV1.AuditEvent.decode(message.payload);
  } catch (cause) {
    throw new AuditEventRejectedError('audit-bad-protobuf', 'payload is not an AuditEvent', [], { cause });
  }
  const mismatched: string[] = [];
  if (event.tenantId !== tenant) mismatched.push('tenantId');
  if (auditActionToken(event.action) !== actionToken) mismatched.push('action');
  if (event.eventId !== '' && event.eventId !== message.id) mismatched.push('eventId');
  if (mismatched.length > 0) {
    throw new AuditEventRejectedError(
      'audit-subject-mismatch',
      `payload disagrees with the subject/envelope on: ${mismatched.join(', ')}`,
      mismatched,
    );
  }
  const actor = event.actor;
  const candidate = {
    entryId: message.id,
    sourceService: source,
    tenantId: event.tenantId,
    action: event.action,
    actorKind: actor?.$case === 'operatorId' ? 'operator' : actor?.$case === 'service' ? 'service' : '',
    actorId: actor?.value ?? '',
    resourceIds: event.resourceIds,
    purposeCode: event.purposeCode,
    ticketRef: event.ticketRef,
    outcome: event.outcome,
    traceId: event.traceId,
    occurredAt: event.occurredAt ? event.occurredAt.getTime() : NaN,
  };
  const result = validateAuditEntry(candidate, rules);
  if (!result.ok) {
    throw new AuditEventRejectedError(
      'audit-invalid-entry',
      `audit event refused: ${result.issues
        .slice(0, 10)
        .map((i) => i.message)
        .join('; ')}`,
      result.issues.map((i) => i.field),
    );
  }
  return result.entry;
}
