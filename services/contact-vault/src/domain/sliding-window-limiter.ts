import { VaultError } from './errors';

/** At most `limit` units per `windowMs`, per key. */
export interface QuotaRule {
  readonly limit: number;
  readonly windowMs: number;
}

/**
 * A sliding-window limiter per key (principal, purpose): remembers when each unit was taken and refuses a take
 * that would exceed the limit within the last window. In memory, per replica: a bound on what one process hands
 * out, not a cluster-wide counter (anomaly detection watches the audit stream for the fleet-wide picture).
 */
export class SlidingWindowLimiter {
  private readonly taken = new Map<string, { at: number; units: number }[]>();

  constructor(
    private readonly rule: QuotaRule,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `units` for `key` or throws VaultError QUOTA_EXCEEDED (nothing taken). `what` names the quota. */
  take(key: string, units: number, what: string): void {
    const now = this.now();
    const since = now - this.rule.windowMs;
    const list = (this.taken.get(key) ?? []).filter((t) => t.at > since);
    const used = list.reduce((n, t) => n + t.units, 0);
    if (used + units > this.rule.limit) {
      this.taken.set(key, list);
      const retryMs = list.length > 0 ? Math.max(0, list[0]!.at + this.rule.windowMs - now) : this.rule.windowMs;
      throw new VaultError(
        'QUOTA_EXCEEDED',
        `${what} quota exceeded (${this.rule.limit} per ${Math.round(this.rule.windowMs / 1000)} s); retry in ${Math.ceil(retryMs / 1000)} s`,
      );
    }
    list.push({ at: now, units });
    this.taken.set(key, list);
    // Keys of principals that went quiet are dropped so the map stays bounded by active principals.
    if (this.taken.size > 10_000) {
      for (const [k, v] of this.taken) if (v.every((t) => t.at <= since)) this.taken.delete(k);
    }
  }
}

/** The vault's quotas: reveal (and export) and find per principal; resolve per caller and per purpose. */
export interface VaultQuotas {
  readonly reveal: SlidingWindowLimiter;
  readonly find: SlidingWindowLimiter;
  readonly resolve: SlidingWindowLimiter;
  readonly resolvePurpose: SlidingWindowLimiter;
}

export function createVaultQuotas(
  rules: Record<keyof VaultQuotas, QuotaRule>,
  now: () => number = Date.now,
): VaultQuotas {
  return {
    reveal: new SlidingWindowLimiter(rules.reveal, now),
    find: new SlidingWindowLimiter(rules.find, now),
    resolve: new SlidingWindowLimiter(rules.resolve, now),
    resolvePurpose: new SlidingWindowLimiter(rules.resolvePurpose, now),
  };
}

/** Generous defaults for tests and tools that do not read configuration. */
export const UNLIMITED_QUOTA: QuotaRule = Object.freeze({ limit: Number.MAX_SAFE_INTEGER, windowMs: 1000 });
