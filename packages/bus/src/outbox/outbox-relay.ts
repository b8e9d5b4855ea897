/**
 * The outbox relay: while it holds the lease, it publishes pending events (event id = `Nats-Msg-Id`) and
 * then removes each by id. A crash anywhere loses nothing: an event is removed only after the bus stored
 * it, and a republish after a crash is absorbed by the duplicate window and the consumers' version marker.
 *
 * With a batch publisher (`publishMany`) and a source that removes many at once (`removeEvents`), events go in
 * batches: one bus commit and one removal per batch instead of one each — with durable commits (fsync per commit
 * on the embedded bus and a SQLite outbox) that is what bounds the relay. The lease is checked, and renewed once a
 * third of its term is used (a renewal is fenced by the lease token), before every batch.
 */
import type { LeaseGrant, LeaseStore } from '@sealpost/storage';
import { sealpostMetrics, type BoundCounter, type BoundRecord } from '@sealpost/telemetry';
import type { BusErrorReporter, EventBatchPublisher, EventPublisher, PublishAck } from '../port';
import { fromOutboxEntry } from './outbox-entry';
import type { OutboxSource, PendingDocument, PublishedEvent } from './outbox-source';
import { errorCode } from '@sealpost/telemetry';

export interface OutboxRelayOptions<K = unknown> {
  readonly source: OutboxSource<K>;
  /** A batch publisher (`publishMany`, both bus adapters) lets the relay publish in batches. */
  readonly publisher: EventPublisher | EventBatchPublisher;
  readonly leases: LeaseStore;
  /** One lease per outbox: e.g. `outbox:consent:consents`. */
  readonly leaseName: string;
  /** This instance's id (pod name + pid). */
  readonly holder: string;
  readonly leaseTtlMs?: number;
  readonly pollIntervalMs?: number;
  /** Documents per scan. */
  readonly batch?: number;
  /**
   * Most events per publish batch (default 1000), when the publisher has `publishMany` and the source
   * `removeEvents`; the source's `removeBatchLimit` may lower it.
   */
  readonly publishBatch?: number;
  readonly onError?: BusErrorReporter;
  /** The `collection` metric label; default: the last `:` token of `leaseName` (`consents`). */
  readonly collection?: string;
}

export interface RelayPassResult {
  readonly published: number;
  readonly duplicates: number;
}

const DEFAULT_PUBLISH_BATCH = 1000;

function batchPublisherOf(publisher: EventPublisher): EventBatchPublisher | undefined {
  const candidate = publisher as Partial<EventBatchPublisher>;
  return typeof candidate.publishMany === 'function' ? (publisher as EventBatchPublisher) : undefined;
}

/** Counters of one pass. */
interface Pass {
  published: number;
  duplicates: number;
  remaining: number;
}

const defaultReporter: BusErrorReporter = (error, where) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'warn', msg: 'outbox relay error', where, code: errorCode(error, 'unknown') })}\n`,
  );
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
      let relayed = 0;
      try {
        if (await this.holdLease()) {
          const pass = await this.runOnce();
          relayed = pass.published + pass.duplicates;
        }
      } catch (error) {
        this.onError(error, 'outbox.relay');
      }
      if (this.stopping) break;
      if (relayed === 0)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, poll);
          // A stop wakes the loop at once and clears the timer, so a stopped relay holds no process open.
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
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

  /** True when the lease is (still, or again after a renewal) held with its safety margin. */
  private async leaseStillHeld(): Promise<boolean> {
    return this.leaseLive() || ((await this.holdLease()) && this.leaseLive());
  }

  /**
   * One scan: publishes pending events in write order per document and removes each after its ack.
   * Publishes nothing unless the lease is held. A failed publish stops that document (order) and the pass.
   * Records the events this scan saw still pending at its end (a lower bound when the scan was full).
   */
  async runOnce(): Promise<RelayPassResult> {
    const pass: Pass = { published: 0, duplicates: 0, remaining: 0 };
    if (!this.leaseLive() && !(await this.holdLease())) return { published: 0, duplicates: 0 };
    const documents = await this.options.source.listPending(this.options.batch ?? 100);
    for (const doc of documents) pass.remaining += doc.events.length;
    this.metrics.pending.record(pass.remaining);
    try {
      const batchPublisher = batchPublisherOf(this.options.publisher);
      if (batchPublisher !== undefined && this.options.source.removeEvents !== undefined) {
        await this.relayInBatches(documents, batchPublisher, pass);
      } else {
        await this.relayOneByOne(documents, pass);
      }
      return { published: pass.published, duplicates: pass.duplicates };
    } finally {
      this.metrics.pending.record(pass.remaining);
    }
  }

  private count(pass: Pass, ack: PublishAck): void {
    pass.remaining--;
    if (ack.duplicate) {
      pass.duplicates++;
      this.metrics.relayed.duplicate.add(1);
    } else {
      pass.published++;
      this.metrics.relayed.ok.add(1);
    }
  }

  private async relayOneByOne(documents: readonly PendingDocument<K>[], pass: Pass): Promise<void> {
    for (const doc of documents) {
      for (const entry of doc.events) {
        if (this.stopping || !(await this.leaseStillHeld())) return;
        let ack;
        try {
          ack = await this.options.publisher.publish(fromOutboxEntry(entry));
        } catch (error) {
          this.metrics.relayed.failed.add(1);
          throw error;
        }
        // Removal by id only after the bus acknowledged: a crash before it means a republish, never a loss.
        await this.options.source.removeEvent(doc.key, entry);
        this.count(pass, ack);
      }
    }
  }

  /**
   * Batch r holds the r-th pending event of each listed document (split by the batch limit), so a document's next
   * event is published only after the bus acknowledged its previous one: per-aggregate order holds even when a
   * batch fails with only part of it stored (JetStream pipelines a batch). A batch that outlives the lease (a long
   * pause) can only republish what the new holder publishes too, each relay in per-document order: the bus drops the
   * duplicate by id (and past its duplicate window, consumers' version markers ignore the older event).
   */
  private async relayInBatches(
    documents: readonly PendingDocument<K>[],
    publisher: EventBatchPublisher,
    pass: Pass,
  ): Promise<void> {
    const source = this.options.source as Required<Pick<OutboxSource<K>, 'removeEvents'>> & OutboxSource<K>;
    const limit = Math.max(
      1,
      Math.min(this.options.publishBatch ?? DEFAULT_PUBLISH_BATCH, source.removeBatchLimit ?? Infinity),
    );
    for (let round = 0; ; round++) {
      const events: PublishedEvent<K>[] = [];
      for (const doc of documents) {
        const entry = doc.events[round];
        if (entry !== undefined) events.push({ key: doc.key, entry });
      }
      if (events.length === 0) return;
      for (let start = 0; start < events.length; start += limit) {
        if (this.stopping || !(await this.leaseStillHeld())) return;
        const batch = events.slice(start, start + limit);
        let acks: PublishAck[];
        try {
          acks = await publisher.publishMany(batch.map((e) => fromOutboxEntry(e.entry)));
        } catch (error) {
          this.metrics.relayed.failed.add(batch.length);
          throw error;
        }
        // Removal by id only after the bus acknowledged all of them: a crash before it means a republish.
        await source.removeEvents(batch);
        for (const ack of acks) this.count(pass, ack);
      }
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
