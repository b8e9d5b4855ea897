/**
 * Stream layout as data: which streams exist, their subjects and limits. Both adapters create streams from
 * these specs, so the embedded bus and JetStream agree on dedupe windows and discard policies.
 */
import { InvalidBusOptionsError, UnsafeStreamConfigError } from './errors';
import {
  BUS_GRANTS,
  DEAD_LETTER_STREAM,
  DEAD_LETTER_SUBJECTS,
  TREE_HEAD_STREAM,
  TREE_HEAD_SUBJECTS,
  domainSubjects,
  streamNameOf,
  type Domain,
  type ServiceName,
} from './topology';

export type StreamKey = Domain | 'deadletter' | 'treehead';

export interface StreamLimits {
  /** JetStream replicas (the embedded bus stores one copy and ignores this). */
  readonly replicas: number;
  /** Messages older than this are removed. */
  readonly maxAgeMs: number;
  /** Size bound of the stream; -1 for none. */
  readonly maxBytes: number;
}

export interface StreamSettings {
  readonly defaults?: Partial<StreamLimits>;
  readonly perStream?: Partial<Record<StreamKey, Partial<StreamLimits>>>;
  /** Publishes of the same event id within this window are acknowledged as duplicates (default 2 min). */
  readonly duplicateWindowMs?: number;
  /** Production passes 3: the audit and tree-head streams refuse fewer replicas. */
  readonly minAuditReplicas?: number;
}

/** A stream as both adapters create it. */
export interface StreamSpec {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly replicas: number;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly duplicateWindowMs: number;
  readonly storage: 'file';
  /** `new` refuses publishes when full (audit: never silently drop old entries); `old` ages them out. */
  readonly discard: 'old' | 'new';
  readonly denyDelete: boolean;
  readonly denyPurge: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
const DEFAULT_LIMITS: StreamLimits = { replicas: 1, maxAgeMs: 7 * DAY_MS, maxBytes: 1024 ** 3 };
const AUDIT_LIMITS: Partial<StreamLimits> = { maxAgeMs: 30 * DAY_MS };

/** The spec of one stream. Throws `UnsafeStreamConfigError` / `InvalidBusOptionsError` for bad settings. */
export function streamSpec(key: StreamKey, settings: StreamSettings = {}): StreamSpec {
  const auditLike = key === 'audit' || key === 'treehead';
  const limits: StreamLimits = {
    ...DEFAULT_LIMITS,
    ...(auditLike ? AUDIT_LIMITS : {}),
    ...settings.defaults,
    ...settings.perStream?.[key],
  };
  const duplicateWindowMs = settings.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
  const name = key === 'deadletter' ? DEAD_LETTER_STREAM : key === 'treehead' ? TREE_HEAD_STREAM : streamNameOf(key);
  if (!Number.isInteger(limits.replicas) || limits.replicas < 1 || limits.replicas > 5)
    throw new InvalidBusOptionsError(`stream ${name}: replicas must be 1..5`);
  if (!Number.isInteger(duplicateWindowMs) || duplicateWindowMs < 1000)
    throw new InvalidBusOptionsError('duplicateWindowMs must be an integer ≥ 1000');
  // JetStream refuses a duplicate window longer than max age; checking here gives the same error in both adapters.
  if (!Number.isInteger(limits.maxAgeMs) || limits.maxAgeMs < duplicateWindowMs)
    throw new InvalidBusOptionsError(`stream ${name}: maxAgeMs must be an integer ≥ duplicateWindowMs`);
  if (!Number.isInteger(limits.maxBytes) || (limits.maxBytes < 1 && limits.maxBytes !== -1))
    throw new InvalidBusOptionsError(`stream ${name}: maxBytes must be a positive integer or -1`);
  const minAuditReplicas = settings.minAuditReplicas ?? 1;
  if (auditLike && limits.replicas < minAuditReplicas)
    throw new UnsafeStreamConfigError(
      `stream ${name}: ${limits.replicas} replicas is below the required minimum of ${minAuditReplicas}`,
    );
  const subjects =
    key === 'deadletter' ? [DEAD_LETTER_SUBJECTS] : key === 'treehead' ? [TREE_HEAD_SUBJECTS] : [domainSubjects(key)];
  return {
    name,
    subjects,
    ...limits,
    duplicateWindowMs,
    storage: 'file',
    discard: auditLike ? 'new' : 'old',
    denyDelete: auditLike,
    denyPurge: auditLike,
  };
}

/** The streams a service creates at start-up: the one it owns, the shared dead-letter stream, tree heads for audit. */
export function streamsOwnedBy(service: ServiceName, settings: StreamSettings = {}): StreamSpec[] {
  const keys: StreamKey[] = [BUS_GRANTS[service].owns, 'deadletter'];
  if (service === 'audit') keys.push('treehead');
  return keys.map((key) => streamSpec(key, settings));
}
