import { VaultError } from './errors';

/** At most `limit` units per `windowMs`, per key. */
export interface QuotaRule {
  readonly limit: number;
  readonly windowMs: number;
}

/** Hands out units of one quota per key (principal, purpose), or refuses with QUOTA_EXCEEDED. */
export interface QuotaLimiter {
  /** Takes `units` for `key` or throws VaultError QUOTA_EXCEEDED (nothing taken). `what` names the quota. */
  take(key: string, units: number, what: string): Promise<void>;
}

/** The refusal of a quota, with when to retry (whole seconds, rounded up). */
export function quotaExceeded(what: string, rule: QuotaRule, retryAfterMs: number): VaultError {
  return new VaultError(
    'QUOTA_EXCEEDED',
    `${what} quota exceeded (${rule.limit} per ${Math.round(rule.windowMs / 1000)} s); retry in ${Math.ceil(retryAfterMs / 1000)} s`,
  );
}

/**
 * A sliding-window limiter per key (principal, purpose) in this process's memory: remembers when each unit was taken
 * and refuses a take that would exceed the limit within the last window. One process only (tests, tools): the
 * service draws its quotas from counters in its database (`createSharedVaultQuotas`), so that every replica shares
 * one limit per principal instead of each handing out the whole of it.
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
      throw quotaExceeded(what, this.rule, retryMs);
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
  readonly reveal: QuotaLimiter;
  readonly find: QuotaLimiter;
  readonly resolve: QuotaLimiter;
  readonly resolvePurpose: QuotaLimiter;
}

/** The vault's quotas in this process's memory (tests, tools); see `createSharedVaultQuotas` for the service. */
export function createVaultQuotas(
  rules: Record<keyof VaultQuotas, QuotaRule>,
  now: () => number = Date.now,
): VaultQuotas {
  const inMemory = (rule: QuotaRule): QuotaLimiter => {
    const limiter = new SlidingWindowLimiter(rule, now);
    return { take: async (key, units, what) => limiter.take(key, units, what) };
  };
  return {
    reveal: inMemory(rules.reveal),
    find: inMemory(rules.find),
    resolve: inMemory(rules.resolve),
    resolvePurpose: inMemory(rules.resolvePurpose),
  };
}

/** Generous defaults for tests and tools that do not read configuration. */
export const UNLIMITED_QUOTA: QuotaRule = Object.freeze({ limit: Number.MAX_SAFE_INTEGER, windowMs: 1000 });
