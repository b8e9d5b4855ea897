/**
 * The outbox relay: while it holds the lease, it publishes pending events (event id = `Nats-Msg-Id`) and
 * then removes each by id. A crash anywhere loses nothing: an event is removed only after the bus stored
 * it, and a republish after a crash is absorbed by the duplicate window and the consumers' version marker.
 */
import type { LeaseGrant, LeaseStore } from '@sealpost/storage';
import { sealpostMetrics, type BoundCounter, type BoundRecord } from '@sealpost/telemetry';
import type { BusErrorReporter, EventPublisher } from '../port';
import { fromOutboxEntry } from './outbox-entry';
import type { OutboxSource } from './outbox-source';

export interface OutboxRelayOptions<K = unknown> {
  readonly source: OutboxSource<K>;
  readonly publisher: EventPublisher;
  readonly leases: LeaseStore;
  /** One lease per outbox: e.g. `outbox:consent:consents`. */
  readonly leaseName: string;
  /** This instance's id (pod name + pid). */
  readonly holder: string;
  readonly leaseTtlMs?: number;
  readonly pollIntervalMs?: number;
  /** Documents per scan. */
  readonly batch?: number;
  readonly onError?: BusErrorReporter;
  /** The `collection` metric label; default: the last `:` token of `leaseName` (`consents`). */
  readonly collection?: string;
}

export interface RelayPassResult {
  readonly published: number;
  readonly duplicates: number;
}

const defaultReporter: BusErrorReporter = (error, where) => {
  const code = error instanceof Error ? ((error as { code?: unknown }).code ?? error.name) : 'unknown';
  process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'outbox relay error', where, code: String(code) })}\n`);
};

export class OutboxRelay<K = unknown> {
  private grant: LeaseGrant | null = null;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly ttl: number;
  private readonly onError: BusErrorReporter;
  private readonly metrics: {
    readonly pending: BoundRecord;
    readonly leaseHeld: BoundRecord;
    readonly relayed: Readonly<Record<'ok' | 'duplicate' | 'failed', BoundCounter>>;
  };

  constructor(private readonly options: OutboxRelayOptions<K>) {
    this.ttl = options.leaseTtlMs ?? 15_000;
    this.onError = options.onError ?? defaultReporter;
    const collection = options.collection ?? options.leaseName.slice(options.leaseName.lastIndexOf(':') + 1);
    const m = sealpostMetrics('bus');
    const relayed = m.counter('sealpost_outbox_relayed_total');
    this.metrics = {
      pending: m.gauge('sealpost_outbox_pending').bind({ collection }),
      leaseHeld: m.gauge('sealpost_lease_held').bind({ lease: options.leaseName }),
      relayed: {
        ok: relayed.bind({ collection, outcome: 'ok' }),
        duplicate: relayed.bind({ collection, outcome: 'duplicate' }),
        failed: relayed.bind({ collection, outcome: 'failed' }),
      },
    };
  }

  /** The lease currently held (its `token` fences this holder's turn), or null. */
  get lease(): LeaseGrant | null {
    return this.grant;
  }

  start(): void {
    this.stopping = false;
    this.loop ??= this.run();
  }

  /** Cuts the poll delay short, e.g. right after a local write queued events. */
  wake(): void {
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    const poll = this.options.pollIntervalMs ?? 500;
    while (!this.stopping) {
      let published = 0;
      try {
        if (await this.holdLease()) published = (await this.runOnce()).published;
      } catch (error) {
        this.onError(error, 'outbox.relay');
      }
      if (this.stopping) break;
      if (published === 0)
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          setTimeout(resolve, poll);
        });
    }
  }

  /** Acquires or renews the lease as needed; false when another holder has it. */
  private async holdLease(): Promise<boolean> {
    const { leases, leaseName, holder } = this.options;
    if (this.grant === null) {
      this.grant = await leases.tryAcquire(leaseName, holder, this.ttl);
    } else if (this.grant.expiresAt - Date.now() < (this.ttl * 2) / 3) {
      // Renew once a third of the term is used, so a slow pass never runs on an expired lease.
      this.grant = await leases.renew(this.grant, this.ttl);
    }
    this.metrics.leaseHeld.record(this.grant === null ? 0 : 1);
    return this.grant !== null;
  }

  /** True while the lease is held with a safety margin; a holder past it stops publishing. */
  private leaseLive(): boolean {
    return this.grant !== null && Date.now() < this.grant.expiresAt - this.ttl / 5;
  }

  /**
   * One scan: publishes pending events in write order per document and removes each after its ack.
   * Publishes nothing unless the lease is held. A failed publish stops that document (order) and the pass.
   * Records the events this scan saw still pending at its end (a lower bound when the scan was full).
   */
  async runOnce(): Promise<RelayPassResult> {
    let published = 0;
    let duplicates = 0;
    if (!this.leaseLive() && !(await this.holdLease())) return { published, duplicates };
    const documents = await this.options.source.listPending(this.options.batch ?? 100);
    let remaining = 0;
    for (const doc of documents) remaining += doc.events.length;
    const { metrics } = this;
    metrics.pending.record(remaining);
    try {
      for (const doc of documents) {
        for (const entry of doc.events) {
          if (this.stopping) return { published, duplicates };
          if (!this.leaseLive() && !((await this.holdLease()) && this.leaseLive())) return { published, duplicates };
          let ack;
          try {
            ack = await this.options.publisher.publish(fromOutboxEntry(entry));
          } catch (error) {
            metrics.relayed.failed.add(1);
            throw error;
          }
          // Removal by id only after the bus acknowledged: a crash before it means a republish, never a loss.
          await this.options.source.removeEvent(doc.key, entry);
          remaining--;
          if (ack.duplicate) {
            duplicates++;
            metrics.relayed.duplicate.add(1);
          } else {
            published++;
            metrics.relayed.ok.add(1);
          }
        }
      }
      return { published, duplicates };
    } finally {
      metrics.pending.record(remaining);
    }
  }

  /** Stops after the current event and releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    this.loop = undefined;
    if (this.grant !== null) {
      const grant = this.grant;
      this.grant = null;
      this.metrics.leaseHeld.record(0);
      await this.options.leases.release(grant);
    }
  }
}
