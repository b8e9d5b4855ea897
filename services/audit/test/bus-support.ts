/** Test support: publishing audit events the way a source service does, on either bus adapter. */
import { auditEventsV1 } from '@sealpost/proto';
import { type ServiceBus, createEnvelope, newEventId } from '@sealpost/bus';
import { auditActionToken } from '@sealpost/audit-format';

export interface AuditEventInput {
  tenantId: string;
  action?: string;
  operatorId?: string;
  resourceIds?: string[];
  purposeCode?: string;
  outcome?: string;
  id?: string;
  occurredAt?: Date;
}

/** The protobuf payload of an audit event. */
export function auditPayload(input: AuditEventInput & { eventId: string }): Uint8Array {
  return auditEventsV1.AuditEvent.encode({
    eventId: input.eventId,
    tenantId: input.tenantId,
    action: input.action ?? 'contact.reveal',
    actor: { $case: 'operatorId', value: input.operatorId ?? 'op-1' },
    resourceIds: input.resourceIds ?? ['ct-1'],
    purposeCode: input.purposeCode ?? 'support',
    ticketRef: '',
    outcome: input.outcome ?? 'granted',
    traceId: '',
    occurredAt: input.occurredAt ?? new Date(1_700_000_000_000),
  }).finish();
}

/** Publishes one audit event as the vault would; returns its event id. */
export async function publishAudit(bus: ServiceBus, input: AuditEventInput, payload?: Uint8Array): Promise<string> {
  const id = input.id ?? newEventId();
  const action = input.action ?? 'contact.reveal';
  await bus.publish(
    createEnvelope({
      id,
      type: 'audit.recorded',
      subject: `sealpost.audit.vault.${input.tenantId}.${auditActionToken(action)}`,
      tenant: input.tenantId,
      aggregateId: input.tenantId,
      aggregateVersion: 1,
      payload: payload ?? auditPayload({ ...input, eventId: id }),
    }),
  );
  return id;
}

/** Polls until `check` holds (or throws after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
