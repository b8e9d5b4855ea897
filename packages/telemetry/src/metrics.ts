/**
 * Every metric Sealpost exports, in one table: instruments are created only from it, so dashboards and
 * alerts can be checked against `METRIC_NAMES`. Labels are ids and codes only, never personal data:
 * values that are not short code-like tokens are recorded as `invalid`.
 */
import { metrics, type Attributes, type Meter } from '@opentelemetry/api';

export type MetricKind = 'counter' | 'histogram' | 'gauge' | 'updown';

export interface MetricSpec {
  readonly kind: MetricKind;
  readonly description: string;
  readonly unit: string;
  /** The only label keys accepted; anything else is dropped. */
  readonly labels: readonly string[];
}

export const METRICS = {
  // bus
  sealpost_bus_published_total: {
    kind: 'counter',
    unit: '{event}',
    description: 'Events published to JetStream / the embedded bus.',
    labels: ['domain', 'event_type', 'outcome'],
  },
  sealpost_bus_consumed_total: {
    kind: 'counter',
    unit: '{event}',
    description: 'Events settled by a durable consumer, by outcome (ack, retry, dead_letter).',
    labels: ['consumer', 'event_type', 'outcome'],
  },
  sealpost_bus_consumer_lag: {
    kind: 'gauge',
    unit: '{event}',
    description: 'Messages pending for a durable consumer.',
    labels: ['consumer', 'stream'],
  },
  sealpost_bus_dead_lettered_total: {
    kind: 'counter',
    unit: '{event}',
    description: 'Events moved to the dead-letter stream.',
    labels: ['consumer', 'event_type', 'reason'],
  },
  sealpost_outbox_pending: {
    kind: 'gauge',
    unit: '{event}',
    description: 'Outbox events not yet published.',
    labels: ['collection'],
  },
  sealpost_outbox_relayed_total: {
    kind: 'counter',
    unit: '{event}',
    description: 'Outbox events relayed to the bus, by outcome.',
    labels: ['collection', 'outcome'],
  },
  // gRPC and HTTP
  sealpost_grpc_server_requests_total: {
    kind: 'counter',
    unit: '{request}',
    description: 'gRPC calls served, by method and status code.',
    labels: ['method', 'code'],
  },
  sealpost_grpc_server_duration_seconds: {
    kind: 'histogram',
    unit: 's',
    description: 'gRPC call latency.',
    labels: ['method', 'code'],
  },
  sealpost_http_server_requests_total: {
    kind: 'counter',
    unit: '{request}',
    description: 'Public HTTP requests (consent pages, webhooks), by route and status.',
    labels: ['route', 'status'],
  },
  sealpost_auth_denied_total: {
    kind: 'counter',
    unit: '{request}',
    description: 'Calls refused by authentication or authorisation, by reason code.',
    labels: ['method', 'reason'],
  },
  // vault
  sealpost_vault_reveals_total: {
    kind: 'counter',
    unit: '{reveal}',
    description: 'Contact reveals, by purpose code and outcome.',
    labels: ['tenant', 'purpose', 'outcome'],
  },
  sealpost_vault_resolved_total: {
    kind: 'counter',
    unit: '{contact}',
    description: 'Addresses resolved for sending, by outcome.',
    labels: ['tenant', 'channel', 'outcome'],
  },
  sealpost_vault_contacts_upserted_total: {
    kind: 'counter',
    unit: '{contact}',
    description:
      "Contacts written by upsert and import, by outcome (created, updated, unchanged, rejected, or a failed upsert's reason in lower case, e.g. dedupe_conflict).",
    labels: ['tenant', 'outcome'],
  },
  sealpost_vault_retention_erased_total: {
    kind: 'counter',
    unit: '{contact}',
    description: 'Contacts the scheduled retention sweep erased, by outcome (erased, failed).',
    labels: ['tenant', 'outcome'],
  },
  sealpost_kms_calls_total: {
    kind: 'counter',
    unit: '{call}',
    description: 'KMS calls, by operation and outcome.',
    labels: ['operation', 'outcome'],
  },
  sealpost_key_cache_total: {
    kind: 'counter',
    unit: '{lookup}',
    description: 'Unwrapped-key cache lookups (hit, miss, expired).',
    labels: ['kind', 'outcome'],
  },
  // consent
  sealpost_consent_transitions_total: {
    kind: 'counter',
    unit: '{transition}',
    description: 'Consent state changes, by channel and new state.',
    labels: ['tenant', 'channel', 'state'],
  },
  // dispatch
  sealpost_dispatch_sends_total: {
    kind: 'counter',
    unit: '{message}',
    description: 'Messages handed to a provider, by channel and outcome.',
    labels: ['tenant', 'channel', 'outcome'],
  },
  sealpost_dispatch_skipped_total: {
    kind: 'counter',
    unit: '{message}',
    description: 'Recipients not sent to, by reason (no_consent, suppressed, frequency_cap).',
    labels: ['tenant', 'channel', 'reason'],
  },
  sealpost_dispatch_deferred_total: {
    kind: 'counter',
    unit: '{message}',
    description: 'Sends deferred (quiet hours), by channel.',
    labels: ['tenant', 'channel', 'reason'],
  },
  sealpost_dispatch_feedback_total: {
    kind: 'counter',
    unit: '{event}',
    description: 'Provider feedback (bounce, complaint, delivery, inbound).',
    labels: ['channel', 'kind'],
  },
  sealpost_webhook_rejected_total: {
    kind: 'counter',
    unit: '{request}',
    description: 'Provider webhooks refused, by reason (signature, topic, certificate host).',
    labels: ['provider', 'reason'],
  },
  // audit
  sealpost_audit_appended_total: {
    kind: 'counter',
    unit: '{entry}',
    description: 'Audit entries appended to the log.',
    labels: ['source', 'outcome'],
  },
  sealpost_audit_tree_size: {
    kind: 'gauge',
    unit: '{entry}',
    description: 'Size of the audit Merkle tree.',
    labels: [],
  },
  sealpost_audit_tree_heads_signed_total: {
    kind: 'counter',
    unit: '{head}',
    description: 'Signed tree heads published to the witness, by outcome.',
    labels: ['witness', 'outcome'],
  },
  // anomaly
  sealpost_anomaly_findings_total: {
    kind: 'counter',
    unit: '{finding}',
    description: 'Detector findings, by detector and severity.',
    labels: ['tenant', 'detector', 'severity'],
  },
  sealpost_anomaly_actions_total: {
    kind: 'counter',
    unit: '{action}',
    description: 'Automated responses taken, by action and outcome.',
    labels: ['tenant', 'action', 'outcome'],
  },
  // identity
  sealpost_identity_logins_total: {
    kind: 'counter',
    unit: '{login}',
    description: 'Operator logins, by outcome (ok, bad_password, bad_otp, locked).',
    labels: ['tenant', 'outcome'],
  },
  sealpost_identity_lockouts_total: {
    kind: 'counter',
    unit: '{lockout}',
    description: 'Operators locked.',
    labels: ['tenant', 'reason'],
  },
  // runtime
  sealpost_lease_held: {
    kind: 'gauge',
    unit: '1',
    description: '1 while this replica holds a singleton lease (relay, sweep, audit writer).',
    labels: ['lease'],
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
/** Every metric name the code exports; dashboards are checked against this list. */
export const METRIC_NAMES: readonly MetricName[] = Object.freeze(Object.keys(METRICS) as MetricName[]);

type NamesOfKind<K extends MetricKind> = {
  [N in MetricName]: (typeof METRICS)[N]['kind'] extends K ? N : never;
}[MetricName];
type LabelsOf<N extends MetricName> = Partial<Record<(typeof METRICS)[N]['labels'][number], string | number | boolean>>;

/** A counter with its labels fixed: sanitised once, so adding allocates nothing (for hot paths). */
export interface BoundCounter {
  add(value: number): void;
}
/** A histogram or gauge with its labels fixed (see `BoundCounter`). */
export interface BoundRecord {
  record(value: number): void;
}

export interface CounterHandle<N extends MetricName> {
  add(value: number, labels?: LabelsOf<N>): void;
  /** Fixes the labels once; cache the result where the label set repeats (per event type, per outcome). */
  bind(labels: LabelsOf<N>): BoundCounter;
}
export interface RecordHandle<N extends MetricName> {
  record(value: number, labels?: LabelsOf<N>): void;
  /** Fixes the labels once (see `CounterHandle.bind`). */
  bind(labels: LabelsOf<N>): BoundRecord;
}

/** Typed access to the instruments of one service, all created on that service's meter. */
export interface SealpostMetrics {
  readonly meter: Meter;
  counter<N extends NamesOfKind<'counter'>>(name: N): CounterHandle<N>;
  updown<N extends NamesOfKind<'updown'>>(name: N): CounterHandle<N>;
  histogram<N extends NamesOfKind<'histogram'>>(name: N): RecordHandle<N>;
  gauge<N extends NamesOfKind<'gauge'>>(name: N): RecordHandle<N>;
}

/** The meter of one service: `sealpost-<service>`, from the global meter provider. */
export function meterFor(service: string): Meter {
  return metrics.getMeter(`sealpost-${service}`);
}

// Ids and codes: letters, digits and a few separators. '@', '+' and spaces (addresses, phone numbers,
// names) never pass, nor anything long enough to be free text. A leading '/' admits gRPC method paths.
const LABEL_VALUE = /^[A-Za-z0-9/][A-Za-z0-9_.:/-]{0,63}$/;

/** Keeps declared label keys only, and code-like values only (others become `invalid`). */
export function sanitizeLabels(allowed: readonly string[], labels: Record<string, unknown> | undefined): Attributes {
  const out: Attributes = {};
  if (!labels) return out;
  for (const key of allowed) {
    const value = labels[key];
    if (value === undefined) continue;
    if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
    else out[key] = typeof value === 'string' && LABEL_VALUE.test(value) ? value : 'invalid';
  }
  return out;
}

/** Instruments for one service. Handles are cached, so calling `counter(name)` per event is cheap. */
export function sealpostMetrics(service: string): SealpostMetrics {
  const meter = meterFor(service);
  type AnyHandle = CounterHandle<MetricName> & RecordHandle<MetricName>;
  const cache = new Map<MetricName, AnyHandle>();

  function handle(name: MetricName, kind: MetricKind): AnyHandle {
    const spec: MetricSpec = METRICS[name];
    if (spec.kind !== kind) throw new TypeError(`metric ${name} is a ${spec.kind}, not a ${kind}`);
    const cached = cache.get(name);
    if (cached) return cached;
    const options = { description: spec.description, unit: spec.unit };
    let write: (value: number, attributes: Attributes) => void;
    switch (spec.kind) {
      case 'counter': {
        const counter = meter.createCounter(name, options);
        write = (value, attributes) => counter.add(value, attributes);
        break;
      }
      case 'updown': {
        const counter = meter.createUpDownCounter(name, options);
        write = (value, attributes) => counter.add(value, attributes);
        break;
      }
      case 'histogram': {
        const histogram = meter.createHistogram(name, options);
        write = (value, attributes) => histogram.record(value, attributes);
        break;
      }
      case 'gauge': {
        const gauge = meter.createGauge(name, options);
        write = (value, attributes) => gauge.record(value, attributes);
        break;
      }
    }
    const bind = (labels: Record<string, unknown>): BoundCounter & BoundRecord => {
      const attributes = Object.freeze(sanitizeLabels(spec.labels, labels));
      const bound = (value: number) => write(value, attributes);
      return { add: bound, record: bound };
    };
    const created: AnyHandle = {
      add: (value: number, labels?: Record<string, unknown>) => write(value, sanitizeLabels(spec.labels, labels)),
      record: (value: number, labels?: Record<string, unknown>) => write(value, sanitizeLabels(spec.labels, labels)),
      bind,
    };
    cache.set(name, created);
    return created;
  }

  return {
    meter,
    counter: (name) => handle(name, 'counter'),
    updown: (name) => handle(name, 'updown'),
    histogram: (name) => handle(name, 'histogram'),
    gauge: (name) => handle(name, 'gauge'),
  };
}
