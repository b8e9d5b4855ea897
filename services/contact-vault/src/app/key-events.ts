import { createEnvelope, eventSubject, type EventEnvelope } from '@sealpost/bus';
import { eventsV1 } from '@sealpost/proto';

/** Event type and subject token of a new current tenant-key version. */
export const TENANT_KEY_ROTATED = { type: 'vault.tenant_key.rotated', token: 'tenant_key_rotated' } as const;
/** Event type and subject token of a finished rotation (older versions retired). */
export const TENANT_KEY_RETIRED = { type: 'vault.tenant_key.retired', token: 'tenant_key_retired' } as const;

/** The aggregate of key events: one tenant key (KEK or index root) of one tenant, across its versions. */
export function tenantKeyAggregateId(tenantId: string, keyKind: 'kek' | 'index'): string {
  return `${tenantId}:key:${keyKind}`;
}

/**
 * Aggregate versions of a tenant key: rotating to version N is 2N−1, finishing that rotation (retiring the older
 * versions) is 2N. Rotations of one key run one at a time and in version order, so these only grow.
 */
export const rotatedAggregateVersion = (version: number): number => 2 * version - 1;
export const retiredAggregateVersion = (version: number): number => 2 * version;

/** `vault.tenant_key.rotated`: the tenant, the key kind and the new current version — no key material. */
export function tenantKeyRotatedEvent(input: {
  tenantId: string;
  keyKind: 'kek' | 'index';
  version: number;
  at: Date;
}): EventEnvelope {
  return createEnvelope({
    type: TENANT_KEY_ROTATED.type,
    subject: eventSubject('vault', input.tenantId, TENANT_KEY_ROTATED.token),
    tenant: input.tenantId,
    aggregateId: tenantKeyAggregateId(input.tenantId, input.keyKind),
    aggregateVersion: rotatedAggregateVersion(input.version),
    occurredAt: input.at,
    payload: eventsV1.TenantKeyRotated.encode({
      tenantId: input.tenantId,
      keyKind: input.keyKind,
      newVersion: input.version,
      occurredAt: input.at,
    }).finish(),
  });
}

/** `vault.tenant_key.retired`: a rotation finished; the versions it retired and the one now in use. */
export function tenantKeyRetiredEvent(input: {
  tenantId: string;
  keyKind: 'kek' | 'index';
  version: number;
  retired: readonly number[];
  at: Date;
}): EventEnvelope {
  return createEnvelope({
    type: TENANT_KEY_RETIRED.type,
    subject: eventSubject('vault', input.tenantId, TENANT_KEY_RETIRED.token),
    tenant: input.tenantId,
    aggregateId: tenantKeyAggregateId(input.tenantId, input.keyKind),
    aggregateVersion: retiredAggregateVersion(input.version),
    occurredAt: input.at,
    payload: eventsV1.TenantKeyRetired.encode({
      tenantId: input.tenantId,
      keyKind: input.keyKind,
      currentVersion: input.version,
      retiredVersions: [...input.retired],
      occurredAt: input.at,
    }).finish(),
  });
}
