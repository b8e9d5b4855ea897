/**
 * The appender: the log's single writer. It holds a lease (LeaseKeeper); on each tenure it fences the store with
 * the lease token, rebuilds its frontier from the stored nodes, and only then starts the durable bus consumer.
 * Entries are appended in groups: everything submitted while the previous write was in flight goes into the next
 * batch (one store write, one head CAS). A handler returns — and the bus acks — only after its batch's CAS.
 */
import {
  type BatchFailure,
  type BatchResult,
  PoisonMessageError,
  type ReceivedEvent,
  type ServiceBus,
  type Subscription,
} from '@sealpost/bus';
import { LeaseKeeper, type LeaseStore } from '@sealpost/storage';
import { AuditMetrics } from './audit-metrics';
import {
  type AuditEntry,
  type AuditEntryRules,
  AuditEventRejectedError,
  encodeAuditEntry,
  entryFromAuditEvent,
  leafHash,
} from '@sealpost/audit-format';
import { type Frontier, appendLeaves, frontierFromStore, frontierRoot } from '../domain';
import { type AuditLogStore, AuditStoreError, type LogHead, type NewLeaf } from '../ports/audit-log-store';
import { errorCode } from '@sealpost/telemetry';

export const AUDIT_APPENDER_DURABLE = 'audit-appender';
export const AUDIT_APPENDER_LEASE = 'audit-appender';
/** Events handed to the appender at once (and fetched per pull) when the bus offers batch delivery. */
const DEFAULT_CONSUME_BATCH = 1000;

/** The appender does not (or no longer) hold the lease; the entry was not appended. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  readonly code = 'AUDIT_NOT_LEADER';
}

/** A group of entries submitted together (one bus batch): one promise, not one per entry. */
interface Pending {
  readonly entries: readonly AuditEntry[];
  readonly resolve: (indices: number[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Appends entries under one fencing token. Idempotent by entry id: an id already in the log (or earlier in the
 * same batch) resolves to its existing index and is not appended again.
 */
export class FencedLogWriter {
  private frontier: Frontier | undefined;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private dead: unknown;

  constructor(
    private readonly store: AuditLogStore,
    readonly token: number,
    private readonly maxBatch = 1000,
  ) {}

  /** Entries in the log as this writer knows it (0 before `open`). */
  get size(): number {
    return this.frontier?.size ?? 0;
  }

  /** Fences the store with this token and loads the frontier. Throws AuditStoreError FENCED. */
  async open(): Promise<LogHead> {
    const head = await this.store.fence(this.token);
    this.frontier = await frontierFromStore(this.store, head.size);
    if (!frontierRoot(this.frontier).equals(head.root)) {
      throw new AuditStoreError('CORRUPT', `stored nodes do not produce the head root at size ${head.size}`);
    }
    return head;
  }

  /** Stops accepting entries; queued ones are rejected with `reason`. */
  close(reason: unknown = new NotLeaderError('appender closed')): void {
    this.dead ??= reason;
    for (const p of this.queue.splice(0)) p.reject(this.dead);
  }

  /** Appends one entry (grouped with others submitted meanwhile); resolves to its index once committed. */
  async submit(entry: AuditEntry): Promise<number> {
    const [index] = await this.append([entry]);
    return index!;
  }

  /** Appends many entries as one group (or more, above maxBatch); resolves to their indices once committed. */
  append(entries: readonly AuditEntry[]): Promise<number[]> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    if (entries.length > this.maxBatch) {
      const chunks: Promise<number[]>[] = [];
      for (let at = 0; at < entries.length; at += this.maxBatch) {
        chunks.push(this.append(entries.slice(at, at + this.maxBatch)));
      }
      return Promise.all(chunks).then((parts) => parts.flat());
    }
    return new Promise<number[]>((resolve, reject) => {
      this.queue.push({ entries, resolve, reject });
      this.flushing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.dead === undefined) {
        // Whole groups, up to maxBatch entries per store write (at least one group).
        let take = 1;
        let count = this.queue[0]!.entries.length;
        while (take < this.queue.length && count + this.queue[take]!.entries.length <= this.maxBatch) {
          count += this.queue[take]!.entries.length;
          take += 1;
        }
        const batch = this.queue.splice(0, take);
        try {
          const indices = await this.write(batch.length === 1 ? batch[0]!.entries : batch.flatMap((p) => p.entries));
          let at = 0;
          for (const p of batch) {
            p.resolve(indices.slice(at, at + p.entries.length));
            at += p.entries.length;
          }
        } catch (err) {
          batch.forEach((p) => p.reject(err));
          if (err instanceof AuditStoreError && err.code === 'FENCED') this.close(new NotLeaderError(err.message));
          // Anything else may have left the head elsewhere than we think: reload before the next batch.
          else this.frontier = undefined;
        }
      }
    } finally {
      this.flushing = undefined;
      if (this.queue.length > 0 && this.dead === undefined) this.flushing = this.drain();
    }
  }

  private async write(entries: readonly AuditEntry[]): Promise<number[]> {
    if (!this.frontier) {
      const head = await this.store.readHead();
      if (head.token > this.token) throw new AuditStoreError('FENCED', `head carries token ${head.token}`);
      this.frontier = await frontierFromStore(this.store, head.size);
    }
    // Index loops, no per-entry callbacks or iterator tuples: this runs for every appended entry.
    const ids = new Array<string>(entries.length);
    for (let i = 0; i < entries.length; i++) ids[i] = entries[i]!.entryId;
    const existing = await this.store.existingEntryIds(ids);
    const indices: number[] = new Array<number>(entries.length).fill(-1);
    const fresh: NewLeaf[] = [];
    const hashes: Buffer[] = [];
    const inBatch = new Map<string, number>();
    const base = this.frontier.size;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (existing.has(e.entryId)) continue;
      const seen = inBatch.get(e.entryId);
      if (seen !== undefined) {
        indices[i] = seen;
        continue;
      }
      const canonical = encodeAuditEntry(e);
      const index = base + fresh.length;
      const hash = leafHash(canonical);
      hashes.push(hash);
      fresh.push({
        index,
        entryId: e.entryId,
        canonical,
        leafHash: hash,
        tenantId: e.tenantId,
        actorId: e.actorId,
        action: e.action,
        resourceIds: e.resourceIds,
        occurredAt: e.occurredAt,
      });
      inBatch.set(e.entryId, index);
      indices[i] = index;
    }
    if (fresh.length > 0) {
      const { newNodes, newFrontier } = appendLeaves(this.frontier, hashes);
      await this.store.append({
        expectedSize: base,
        token: this.token,
        leaves: fresh,
        nodes: newNodes,
        newRoot: frontierRoot(newFrontier),
      });
      this.frontier = newFrontier;
    }
    // Already-logged ids resolve to where they are (a redelivery after a crash between CAS and ack).
    if (existing.size > 0) {
      for (let i = 0; i < entries.length; i++) {
        if (indices[i] === -1) indices[i] = (await this.store.findByEntryId(entries[i]!.entryId))?.index ?? -1;
      }
    }
    return indices;
  }
}

export interface AuditAppenderOptions {
  readonly store: AuditLogStore;
  readonly leaseStore: LeaseStore;
  /** Unique per instance (newLeaseHolderId('audit')). */
  readonly holder: string;
  readonly bus: ServiceBus;
  readonly leaseTtlMs?: number;
  readonly maxBatch?: number;
  readonly rules?: Partial<AuditEntryRules>;
  /** Bus consumer knobs (ack wait, backoff, pull batch). */
  readonly consume?: { ackWaitMs?: number; backoffMs?: readonly number[]; batch?: number; maxDeliver?: number };
  /** Durable name (default `audit-appender`); tests use their own. */
  readonly durable?: string;
  /** Subject filter (default `sealpost.audit.>`); tests narrow it to their own tenant. */
  readonly filterSubject?: string;
  /** After each committed entry (e.g. to drive tree-head signing). */
  readonly onAppended?: (index: number) => void;
  readonly onError?: (err: unknown, where: string) => void;
  /** Defaults to the global meter provider's instruments. */
  readonly metrics?: AuditMetrics;
}

/** `sealpost.audit.<source>.…` → source, for counting events that could not become entries. */
function sourceOfSubject(subject: string): string {
  return subject.split('.')[2] ?? 'unknown';
}

/** Runs the appender: waits for the lease, fences, consumes `sealpost.audit.>` and appends. */
export class AuditAppender {
  private readonly keeper: LeaseKeeper;
  private writer: FencedLogWriter | undefined;
  private subscription: Subscription | undefined;
  private tenure: Promise<void> = Promise.resolve();
  private readonly metrics: AuditMetrics;

  constructor(private readonly opts: AuditAppenderOptions) {
    this.metrics = opts.metrics ?? new AuditMetrics(AUDIT_APPENDER_LEASE);
    this.keeper = new LeaseKeeper({
      store: opts.leaseStore,
      name: AUDIT_APPENDER_LEASE,
      holder: opts.holder,
      ttlMs: opts.leaseTtlMs ?? 15_000,
      onAcquired: (grant, signal) => {
        this.tenure = this.tenure.then(() => this.begin(grant.token, signal));
      },
      onError: (err) => this.report(err, 'lease'),
    });
  }

  /** The writer of the current tenure, if this instance holds the lease. */
  get activeWriter(): FencedLogWriter | undefined {
    return this.writer;
  }

  start(): void {
    this.keeper.start();
  }

  /** Stops consuming (in-flight entries finish or fail), then releases the lease. */
  async stop(): Promise<void> {
    await this.keeper.stop();
    await this.tenure;
    await this.end();
  }

  private async begin(token: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const writer = new FencedLogWriter(this.opts.store, token, this.opts.maxBatch);
    try {
      await writer.open();
    } catch (err) {
      this.report(err, 'fence');
      return;
    }
    this.writer = writer;
    this.metrics.leaseHeld(true);
    this.metrics.size(writer.size);
    signal.addEventListener('abort', () => {
      writer.close(new NotLeaderError('lease lost'));
      this.tenure = this.tenure.then(() => this.end());
    });
    if (signal.aborted) return;
    const c = this.opts.consume ?? {};
    const options = {
      durable: this.opts.durable ?? AUDIT_APPENDER_DURABLE,
      domain: 'audit' as const,
      filterSubjects: [this.opts.filterSubject ?? 'sealpost.audit.>'],
      ...(c.ackWaitMs !== undefined ? { ackWaitMs: c.ackWaitMs } : {}),
      ...(c.backoffMs !== undefined ? { backoffMs: c.backoffMs } : {}),
      ...(c.maxDeliver !== undefined ? { maxDeliver: c.maxDeliver } : {}),
    };
    // Batches: everything delivered meanwhile becomes one store write (one fsync), instead of one per event.
    this.subscription =
      typeof this.opts.bus.consumeBatches === 'function'
        ? await this.opts.bus.consumeBatches({ ...options, batch: c.batch ?? DEFAULT_CONSUME_BATCH }, (events) =>
            this.handleBatch(writer, events),
          )
        : await this.opts.bus.consume({ ...options, ...(c.batch !== undefined ? { batch: c.batch } : {}) }, (event) =>
            this.handle(writer, event),
          );
  }

  private async end(): Promise<void> {
    const sub = this.subscription;
    this.subscription = undefined;
    if (this.writer) this.metrics.leaseHeld(false);
    this.writer?.close();
    this.writer = undefined;
    await sub?.stop();
  }

  private async handle(writer: FencedLogWriter, event: ReceivedEvent): Promise<void> {
    let entry: AuditEntry;
    try {
      entry = entryFromAuditEvent(event, this.opts.rules);
    } catch (err) {
      if (err instanceof AuditEventRejectedError) {
        this.metrics.entries(sourceOfSubject(event.subject), 'rejected');
        throw new PoisonMessageError(err.reason, { cause: err });
      }
      throw err;
    }
    const index = await writer.submit(entry);
    this.metrics.entries(entry.sourceService, 'ok');
    this.metrics.size(writer.size);
    this.opts.onAppended?.(index);
  }

  /** Appends a delivered batch as one group; malformed events are dead-lettered, the rest acked after the CAS. */
  private async handleBatch(writer: FencedLogWriter, events: readonly ReceivedEvent[]): Promise<BatchResult | void> {
    const failures = new Map<string, BatchFailure>();
    const entries: AuditEntry[] = [];
    for (const event of events) {
      try {
        entries.push(entryFromAuditEvent(event, this.opts.rules));
      } catch (err) {
        if (!(err instanceof AuditEventRejectedError)) throw err;
        this.metrics.entries(sourceOfSubject(event.subject), 'rejected');
        failures.set(event.id, new PoisonMessageError(err.reason, { cause: err }));
      }
    }
    // A throw (store error, lost lease) fails the whole batch: redelivered, and appended once by entry id.
    const indices = entries.length > 0 ? await writer.append(entries) : [];
    for (const entry of entries) this.metrics.entries(entry.sourceService, 'ok');
    this.metrics.size(writer.size);
    for (const index of indices) this.opts.onAppended?.(index);
    return failures.size > 0 ? { failures } : undefined;
  }

  private report(err: unknown, where: string): void {
    if (this.opts.onError) this.opts.onError(err, where);
    else {
      process.stderr.write(
        `${JSON.stringify({ level: 'warn', msg: 'audit appender', where, code: errorCode(err) })}\n`,
      );
    }
  }
}
