/**
 * The scheduled retention sweep: every `everyMs`, the one replica holding the retention lease erases the contacts
 * past their tenant's retention with sweepRetention (the normal, audited erasure path; up to 32 erasures at once,
 * each waiting for its audit proof) and reports the counts. The other replicas stand by; when the holder stops or
 * loses the lease, another takes it over.
 */
import { LeaseKeeper, type LeaseStore } from '@sealpost/storage';
import type { EraseDeps } from './erase-contact';
import { sweepRetention, type RetentionPolicy, type RetentionReport } from './sweep-retention';

/** One lease for the retention sweep, shared by every replica. */
export const RETENTION_LEASE = 'retention:contact-vault';

export interface RetentionScheduleOptions {
  readonly deps: EraseDeps;
  readonly policy: RetentionPolicy;
  /** The tenants to sweep besides those the policy names (e.g. every tenant with a key). */
  readonly tenants: () => Promise<readonly string[]>;
  readonly leases: LeaseStore;
  /** Unique per process (`newLeaseHolderId`). */
  readonly holder: string;
  /** How often the lease holder sweeps. */
  readonly everyMs: number;
  /** Lease lifetime (default 30 s; renewed every third of it). */
  readonly leaseTtlMs?: number;
  /** Called with each finished sweep's report (counts and tenant ids only). */
  readonly onSwept?: (report: RetentionReport, elapsedMs: number) => void;
  /** Called when this replica takes (true) or loses (false) the lease. */
  readonly onLeaseHeld?: (held: boolean) => void;
  readonly onError?: (err: unknown) => void;
}

/** Runs sweepRetention on a timer, only on the lease holder; sweeps never overlap. */
export class RetentionSchedule {
  private readonly keeper: LeaseKeeper;
  private tenure: AbortSignal | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private readonly stopping = new AbortController();

  constructor(private readonly opts: RetentionScheduleOptions) {
    if (opts.policy.all === undefined && Object.keys(opts.policy.tenants).length === 0) {
      throw new RangeError('a retention schedule needs a retention policy');
    }
    this.keeper = new LeaseKeeper({
      store: opts.leases,
      name: RETENTION_LEASE,
      holder: opts.holder,
      ttlMs: opts.leaseTtlMs ?? 30_000,
      onAcquired: (_grant, signal) => {
        this.tenure = signal;
        opts.onLeaseHeld?.(true);
        // A sweep right away too: replicas that restart more often than `everyMs` must still sweep.
        void this.runNow();
      },
      onLost: () => {
        this.tenure = undefined;
        opts.onLeaseHeld?.(false);
      },
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
  }

  /** True while this replica holds the retention lease. */
  get leading(): boolean {
    return this.keeper.grant !== null && this.tenure !== undefined && !this.tenure.aborted;
  }

  start(): void {
    this.keeper.start();
    this.timer = setInterval(() => void this.runNow(), this.opts.everyMs);
    this.timer.unref();
  }

  /**
   * Sweeps now if this replica holds the lease (serialised with other runs). Resolves to the report, or undefined
   * when not the holder, stopped, or failed (errors go to onError).
   */
  runNow(): Promise<RetentionReport | undefined> {
    const next = this.running.then(async () => {
      const tenure = this.tenure;
      if (this.stopping.signal.aborted || !this.leading || !tenure) return undefined;
      const started = Date.now();
      try {
        const report = await sweepRetention(this.opts.deps, {
          policy: this.opts.policy,
          tenants: await this.opts.tenants(),
          dryRun: false,
          signal: AbortSignal.any([tenure, this.stopping.signal]),
        });
        this.opts.onSwept?.(report, Date.now() - started);
        return report;
      } catch (err) {
        this.opts.onError?.(err);
        return undefined;
      }
    });
    this.running = next;
    return next;
  }

  /**
   * Stops the timer and the lease, and lets a running sweep finish the erasures it started, waiting at most
   * `waitMs` for them (each waits for its audit proof; one left behind completes or fails on its own).
   */
  async stop(waitMs = 5_000): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.running,
      new Promise((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
    const held = this.keeper.grant !== null;
    await this.keeper.stop();
    if (held) this.opts.onLeaseHeld?.(false);
  }
}
