import { createHash } from 'node:crypto';
import { isStorageError, type WindowedCounterStore } from '@sealpost/storage';
import { VaultError, quotaExceeded, type QuotaLimiter, type QuotaRule, type VaultQuotas } from '../domain';

/**
 * The vault's quotas drawn from counters in the vault's database, so that every replica draws from one limit per
 * principal (or purpose) — with N replicas a principal still gets the limit, not N times it. Counter keys are
 * hashes of (quota, key): the database keeps no principal ids or purpose references.
 */
export function createSharedVaultQuotas(
  rules: Record<keyof VaultQuotas, QuotaRule>,
  counters: WindowedCounterStore,
): VaultQuotas {
  const shared = (name: keyof VaultQuotas): QuotaLimiter => {
    const rule = rules[name];
    return {
      async take(key, units, what) {
        const counterKey = createHash('sha256').update(`vault-quota\u0000${name}\u0000${key}`).digest('base64url');
        let taken;
        try {
          taken = await counters.take(counterKey, units, rule);
        } catch (err) {
          // Fail closed: a quota that cannot be checked is not granted. Busy counters clear within moments.
          if (isStorageError(err, 'STORAGE_CONTENDED')) {
            throw new VaultError('QUOTA_EXCEEDED', `${what} quota busy; retry in 1 s`, undefined, { cause: err });
          }
          throw err;
        }
        if (!taken.granted) throw quotaExceeded(what, rule, taken.retryAfterMs);
      },
    };
  };
  return {
    reveal: shared('reveal'),
    find: shared('find'),
    resolve: shared('resolve'),
    resolvePurpose: shared('resolvePurpose'),
  };
}
