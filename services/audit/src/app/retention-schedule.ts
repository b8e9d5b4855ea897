/**
 * Retention of the log itself: every `everyMs`, the instance holding the appender's lease prunes the entries older
 * than the retention period with pruneAuditLog (which verifies the whole log first and never prunes past the newest
 * signed head, keeping tree nodes and heads — see README "Retention of the log itself"). A standby instance does
 * nothing: one pruner, the same one that writes.
 */
import type { StoredTreeHead } from '../ports/audit-log-store';
import { type AuditLogStore } from '../ports/audit-log-store';
import { type PruneAuditLogResult, type PublicKeys, pruneAuditLog } from './verify';

const DAY_MS = 86_400_000;

export interface RetentionScheduleOptions {
  readonly store: AuditLogStore;
  /** Entries that occurred more than this many days ago are pruned. */
  readonly retentionDays: number;
  /** How often to prune (default hourly). */
  readonly everyMs?: number;
  /** Keys for the verification run before each prune (the signer's public key, plus retired ones). */
  readonly publicKeys: () => Promise<PublicKeys>;
  /** The witnessed head to pin, when there is one (read fresh each run). */
  readonly trustedSth?: () => Promise<StoredTreeHead | undefined>;
  /** True while this instance holds the appender lease. */
  readonly isLeader: () => boolean;
  readonly now?: () => number;
  readonly onPruned?: (result: PruneAuditLogResult) => void;
  readonly onError?: (err: unknown) => void;
}

/** Runs pruneAuditLog on a timer, only on the lease holder; runs never overlap. */
export class RetentionSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: RetentionScheduleOptions) {
    if (!Number.isSafeInteger(opts.retentionDays) || opts.retentionDays < 1) {
      throw new RangeError('retentionDays must be a positive whole number');
    }
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.runNow(), this.opts.everyMs ?? 3_600_000);
    this.timer.unref();
  }

  /**
   * Prunes now if this instance leads (serialised with other runs). Resolves to the result, or undefined when not
   * the leader, stopped, or failed (errors go to onError — e.g. LOG_NOT_VERIFIED: nothing is pruned then).
   */
  runNow(): Promise<PruneAuditLogResult | undefined> {
    const next = this.running.then(async () => {
      if (this.stopped || !this.opts.isLeader()) return undefined;
      try {
        const trusted = await this.opts.trustedSth?.();
        const result = await pruneAuditLog({
          store: this.opts.store,
          before: (this.opts.now ?? Date.now)() - this.opts.retentionDays * DAY_MS,
          publicKeys: await this.opts.publicKeys(),
          ...(trusted ? { trustedSth: trusted } : {}),
        });
        this.opts.onPruned?.(result);
        return result;
      } catch (err) {
        this.opts.onError?.(err);
        return undefined;
      }
    });
    this.running = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
