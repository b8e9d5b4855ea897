/**
 * The bus's metrics: published, consumed, dead-lettered, consumer lag and the outbox relay. Labels are
 * domains, event types, consumer and stream names and outcome codes: never tenants or payload.
 */
import { sealpostMetrics, type BoundCounter, type BoundRecord, type SealpostMetrics } from '@sealpost/telemetry';
import type { Settlement } from './delivery-policy';
import { HEADERS } from './envelope';
import type { EventEnvelope, PublishAck } from './port';

/** `refused`: not sent (outside the grant, invalid, bus closed); `failed`: sent but not stored. */
export type PublishOutcome = 'ok' | 'duplicate' | 'refused' | 'failed';
export type ConsumeOutcome = 'ack' | 'retry' | 'dead_letter';

// Bound handles are cached per label set; event types come from message headers, so the cache is capped
// (past it, labels are sanitised per call: slower, still correct).
const MAX_BOUND = 512;

/** Second subject token: `sealpost.<domain>.…` → domain (`audit`, `deadletter`, `treehead` included). */
export function domainOfSubject(subject: string): string {
  if (typeof subject !== 'string') return 'unknown';
  const start = subject.indexOf('.') + 1;
  const end = subject.indexOf('.', start);
  return start > 0 && end > start ? subject.slice(start, end) : 'unknown';
}

/** Instruments of one bus (created with the bus, from the meter provider current then). */
export class BusMetrics {
  private readonly m: SealpostMetrics = sealpostMetrics('bus');
  private readonly bound = new Map<string, BoundCounter>();
  private readonly lagGauges = new Map<string, BoundRecord>();

  private counter(key: string, make: () => BoundCounter): BoundCounter {
    let handle = this.bound.get(key);
    if (handle === undefined) {
      handle = make();
      if (this.bound.size < MAX_BOUND) this.bound.set(key, handle);
    }
    return handle;
  }

  /** One publish attempt's result for `subject`/`type` (JetStream ack, SQLite commit, or failure). */
  published(subject: string, type: string, outcome: PublishOutcome, count = 1): void {
    const domain = domainOfSubject(subject);
    this.counter(`p\0${outcome}\0${domain}\0${type}`, () =>
      this.m.counter('sealpost_bus_published_total').bind({ domain, event_type: type, outcome }),
    ).add(count);
  }

  /** An envelope refused before sending (the caller may have passed anything). */
  refused(envelope: unknown): void {
    const e = (typeof envelope === 'object' && envelope !== null ? envelope : {}) as Partial<EventEnvelope>;
    this.published(e.subject ?? '', e.type ?? 'unknown', 'refused');
  }

  /** Publish results of a batch: one per envelope, from its ack or the batch's failure. */
  publishedAll(envelopes: readonly EventEnvelope[], acks: readonly PublishAck[] | null): void {
    for (let i = 0; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      const ack = acks?.[i];
      this.published(
        envelope.subject,
        envelope.type,
        ack === undefined ? 'failed' : ack.duplicate ? 'duplicate' : 'ok',
      );
    }
  }

  /** A delivery settled by `consumer`, plus the dead-letter count when that is what was done. */
  settled(consumer: string, headers: Readonly<Record<string, string>>, settlement: Settlement): void {
    const type = headers[HEADERS.type] ?? 'unknown';
    const outcome: ConsumeOutcome =
      settlement.kind === 'dead-letter' ? 'dead_letter' : settlement.kind === 'retry' ? 'retry' : 'ack';
    this.counter(`c\0${outcome}\0${consumer}\0${type}`, () =>
      this.m.counter('sealpost_bus_consumed_total').bind({ consumer, event_type: type, outcome }),
    ).add(1);
    if (settlement.kind === 'dead-letter') {
      const reason = settlement.reason;
      this.counter(`d\0${reason}\0${consumer}\0${type}`, () =>
        this.m.counter('sealpost_bus_dead_lettered_total').bind({ consumer, event_type: type, reason }),
      ).add(1);
    }
  }

  /** Messages still pending for a durable consumer (JetStream `num_pending`, embedded store count). */
  lag(consumer: string, stream: string, pending: number): void {
    const key = `${consumer}\0${stream}`;
    let gauge = this.lagGauges.get(key);
    if (gauge === undefined) {
      gauge = this.m.gauge('sealpost_bus_consumer_lag').bind({ consumer, stream });
      this.lagGauges.set(key, gauge);
    }
    gauge.record(pending);
  }
}
