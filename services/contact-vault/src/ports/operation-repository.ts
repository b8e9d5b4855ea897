import type { EventEnvelope, OutboxSource } from '@sealpost/bus';
import type { VaultAuditEvent } from './audit-publisher';

/**
 * The audit event an operation publishes, fixed before its first publish: a resumed operation publishes the same
 * event again (the stream and the audit log deduplicate by id) instead of a second one. Ids and codes only.
 */
export interface OperationAuditEvent {
  readonly eventId: string;
  /** Milliseconds since the Unix epoch. */
  readonly occurredAt: number;
  readonly event: VaultAuditEvent;
}

/**
 * Where a key rotation stands (internal), so that a later call resumes it instead of creating another version:
 * `audit` — its audit event is fixed but not acknowledged, nothing else happened; `audited` — acknowledged, the
 * version may not exist yet; `created` — the version exists and its `vault.tenant_key.rotated` event is queued.
 */
export interface RotationState {
  readonly keyKind: 'kek' | 'index';
  /** The version this rotation creates and moves everything to. */
  readonly version: number;
  readonly stage: 'audit' | 'audited' | 'created';
}

/** A long-running operation (erasure, key rotation) as the API reports it. */
export interface OperationRecord {
  readonly operationId: string;
  readonly kind: 'erase-contact' | 'rotate-tenant-key';
  readonly tenantId: string;
  readonly done: boolean;
  /** In [0, 1]. */
  readonly progress: number;
  /** JWS receipt (erasure) or a JSON summary (rotation) when done with success. */
  readonly result: string;
  /** Stable reason code when done with failure. */
  readonly errorReason: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Erasure or rotation: its audit event, once fixed (internal; not part of the API's Operation). */
  readonly auditEvent?: OperationAuditEvent;
  /** Rotation: where it stands (internal). */
  readonly rotation?: RotationState;
  /**
   * Erasure: whether it kept a suppression tombstone, saved before the data key is shredded (internal), so a resumed
   * erasure's receipt states what was really kept, whatever the retry asks for.
   */
  readonly erasure?: { readonly suppressionKept: boolean };
}

/** Where operations are kept so GetOperation can answer after the call that started them returned. */
export interface OperationRepository {
  /** Inserts, or replaces a record with the same id (events it queued earlier stay queued). */
  save(op: OperationRecord): Promise<void>;
  /**
   * `save`, and queues `events` for the bus in the same atomic write (the operation's outbox): an operation's
   * events (key rotations) are published by a relay, so none is lost to a crash or a bus outage.
   */
  saveWithEvents(op: OperationRecord, events: readonly EventEnvelope[]): Promise<void>;
  get(operationId: string): Promise<OperationRecord | undefined>;
  /** Where the relay finds the queued events. */
  outbox(): OutboxSource<unknown>;
}
