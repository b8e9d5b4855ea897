import type { LeaseGrant, LeaseStore } from '@sealpost/storage';
import { VaultError } from '../domain';

/** A lease one operation holds while it runs; renewed in the background until released. */
export interface HeldLease {
  /** Aborts (with a VaultError CONCURRENT_UPDATE) when the lease is lost: the holder must stop its work. */
  readonly signal: AbortSignal;
  /** Stops renewing and releases the lease (a no-op when lost). */
  release(): Promise<void>;
}

/** Lease lifetime of an operation; renewed every third of it. */
export const OPERATION_LEASE_TTL_MS = 30_000;

/**
 * Takes the lease `name` for one run of an operation and renews it every `ttlMs / 3` until released; null when
 * another holder has it. `holder` must be unique per run (`newLeaseHolderId`): two runs sharing a holder id would
 * share the lease.
 */
export async function holdLease(
  leases: LeaseStore,
  name: string,
  holder: string,
  ttlMs = OPERATION_LEASE_TTL_MS,
): Promise<HeldLease | null> {
  let grant: LeaseGrant | null = await leases.tryAcquire(name, holder, ttlMs);
  if (!grant) return null;
  const controller = new AbortController();
  const lost = (): void => {
    grant = null;
    clearInterval(timer);
    controller.abort(new VaultError('CONCURRENT_UPDATE', 'the operation lost its lease; run it again'));
  };
  let renewing = false;
  const timer = setInterval(
    () => {
      const held = grant;
      if (renewing || held === null) return;
      renewing = true;
      leases
        .renew(held, ttlMs)
        .then((renewed) => {
          if (renewed) grant = renewed;
          else lost();
        })
        // An unreachable store: keep trying while the lease may still be ours, then fail closed.
        .catch(() => {
          if (Date.now() + ttlMs / 3 >= held.expiresAt) lost();
        })
        .finally(() => {
          renewing = false;
        });
    },
    Math.max(1, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return {
    signal: controller.signal,
    async release() {
      clearInterval(timer);
      const held = grant;
      grant = null;
      if (held) await leases.release(held).catch(() => undefined);
    },
  };
}
