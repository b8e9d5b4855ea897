import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import type { LeaseGrant, LeaseStore } from './lease';
import { checkLeaseArgs } from './lease-args';

export type LeaseLossReason = 'taken' | 'unreachable';

export interface LeaseKeeperOptions {
  readonly store: LeaseStore;
  readonly name: string;
  /** Unique per process instance (see `newLeaseHolderId`); two processes sharing a holder id share the lease. */
  readonly holder: string;
  /** Lease lifetime; must be much larger than clock skew between hosts plus a store round-trip. */
  readonly ttlMs: number;
  /** Renewal period while holding (default ttl/3). */
  readonly renewEveryMs?: number;
  /** Retry period while not holding (default ttl/3). */
  readonly retryEveryMs?: number;
  /**
   * Called when the lease is taken. Start the singleton work here and return (it is not awaited, renewals must
   * keep running); stop the work when `signal` aborts, and pass `grant.token` with every fenced write.
   */
  readonly onAcquired?: (grant: LeaseGrant, signal: AbortSignal) => void | Promise<void>;
  /** Called when a renewal shows the lease is gone, or could not be confirmed before it would expire. */
  readonly onLost?: (grant: LeaseGrant, reason: LeaseLossReason) => void;
  /** Store or callback failures (the loop keeps going). Defaults to a process warning carrying no data. */
  readonly onError?: (err: unknown) => void;
  /** Clock in epoch ms (default Date.now); only used to decide whether an unconfirmed lease may have expired. */
  readonly now?: () => number;
}

/** A process-unique lease holder id: prefix, pid and randomness (no user data). */
export function newLeaseHolderId(prefix = 'sealpost'): string {
  return `${prefix}:${process.pid}:${randomUUID()}`;
}

/**
 * Runs a singleton: keeps trying to acquire `name`, renews it at ttl/3 while held, reports loss via `onLost`
 * (and aborts the tenure's signal), and on `stop()` ends the loop and releases the lease.
 */
export class LeaseKeeper {
  private readonly opts: LeaseKeeperOptions;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private readonly now: () => number;
  private held: LeaseGrant | null = null;
  private tenure: AbortController | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(options: LeaseKeeperOptions) {
    checkLeaseArgs(options.name, options.holder, options.ttlMs);
    this.opts = options;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(options.ttlMs / 3));
    this.retryEveryMs = options.retryEveryMs ?? this.renewEveryMs;
    if (this.renewEveryMs >= options.ttlMs) {
      throw new StorageError('STORAGE_INVALID_ARGUMENT', `lease ${options.name}: renewEveryMs must be below ttlMs`);
    }
    this.now = options.now ?? Date.now;
  }

  /** The grant currently held, or null. */
  get grant(): LeaseGrant | null {
    return this.held;
  }

  /** Starts the loop; a second call is a no-op. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.loop();
  }

  /** Stops the loop, aborts the current tenure and releases the lease if held. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    const grant = this.held;
    if (grant) {
      this.held = null;
      this.tenure?.abort(new StorageError('STORAGE_UNAVAILABLE', `lease ${grant.name} released on stop`));
      try {
        await this.opts.store.release(grant);
      } catch (err) {
        // Not fatal: the lease simply expires after its ttl.
        this.reportError(err);
      }
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.step();
      if (this.stopped) break;
      await this.sleep(this.held ? this.renewEveryMs : this.retryEveryMs);
    }
  }

  private async step(): Promise<void> {
    const { store, name, holder, ttlMs } = this.opts;
    const held = this.held;
    try {
      if (held === null) {
        const grant = await store.tryAcquire(name, holder, ttlMs);
        if (grant && this.stopped)
          this.held = grant; // stop() releases it; the work never starts
        else if (grant) this.begin(grant);
        return;
      }
      const renewed = await store.renew(held, ttlMs);
      if (renewed) this.held = renewed;
      else this.lose(held, 'taken');
    } catch (err) {
      this.reportError(err);
      // Fail closed: if the next renewal could come too late, behave as if the lease were already gone.
      if (held && this.now() + this.renewEveryMs >= held.expiresAt) this.lose(held, 'unreachable');
    }
  }

  private begin(grant: LeaseGrant): void {
    this.held = grant;
    this.tenure = new AbortController();
    const signal = this.tenure.signal;
    try {
      Promise.resolve(this.opts.onAcquired?.(grant, signal)).catch((err: unknown) => this.reportError(err));
    } catch (err) {
      this.reportError(err);
    }
  }

  private lose(grant: LeaseGrant, reason: LeaseLossReason): void {
    this.held = null;
    this.tenure?.abort(new StorageError('STORAGE_UNAVAILABLE', `lease ${grant.name} lost (${reason})`));
    this.tenure = null;
    try {
      this.opts.onLost?.(grant, reason);
    } catch (err) {
      this.reportError(err);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      // Timers alone should not keep a draining process alive; the service's servers do that.
      timer.unref();
      const wake = (): void => {
        clearTimeout(timer);
        done();
      };
      this.wake = wake;
      function done(): void {
        resolve();
      }
    });
  }

  private reportError(err: unknown): void {
    if (this.opts.onError) {
      this.opts.onError(err);
      return;
    }
    const code = err instanceof StorageError ? err.code : err instanceof Error ? err.name : 'error';
    process.emitWarning(`lease ${this.opts.name}: ${code}`, { code: 'SEALPOST_LEASE' });
  }
}
