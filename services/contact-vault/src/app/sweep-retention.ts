import { VaultError } from '../domain';
import type { EraseDeps } from './erase-contact';
import { startEraseContact } from './erase-contact';

/** Per-tenant retention: erase contacts with no activity for N days (`all` applies to tenants not listed). */
export interface RetentionPolicy {
  readonly all?: number;
  readonly tenants: Readonly<Record<string, number>>;
}

export interface RetentionReport {
  readonly dryRun: boolean;
  /** Per tenant: contacts past their retention, and how many were erased (0 in a dry run). */
  readonly tenants: Record<string, { days: number; due: number; erased: number; failed: number }>;
}

const DAY_MS = 86_400_000;
const PAGE = 200;
/**
 * Erasures of a sweep in flight at once. Each completes only when the audit log has signed its entry (up to one
 * tree-head interval), so one at a time would cost an interval per contact; concurrent ones share the same head.
 */
const CONCURRENT_ERASURES = 32;

/**
 * Finds contacts past their tenant's retention and (unless `dryRun`) erases each through the normal erasure path
 * (tombstone, ledger, shred, audited; no suppression tombstone: retention is not an objection to contact).
 * `tenants` lists the tenants to sweep (tenants named in the policy are always included). Returns counts only.
 */
export async function sweepRetention(
  deps: EraseDeps,
  options: {
    policy: RetentionPolicy;
    tenants?: readonly string[];
    dryRun: boolean;
    now?: Date;
    /** Stops starting erasures when aborted (the sweep's lease was lost, the service stops); counts stay true. */
    signal?: AbortSignal;
  },
): Promise<RetentionReport> {
  const now = options.now ?? new Date();
  const names = new Set([...(options.tenants ?? []), ...Object.keys(options.policy.tenants)]);
  const report: RetentionReport = { dryRun: options.dryRun, tenants: {} };
  for (const tenantId of [...names].sort()) {
    if (options.signal?.aborted) break;
    const days = options.policy.tenants[tenantId] ?? options.policy.all;
    if (days === undefined) continue;
    const before = new Date(now.getTime() - days * DAY_MS);
    const counts = { days, due: 0, erased: 0, failed: 0 };
    report.tenants[tenantId] = counts;
    if (options.dryRun) {
      // Counting through the same query the sweep erases with, page by page.
      const seen = new Set<string>();
      for (;;) {
        const page = await deps.contacts.listInactive(tenantId, before, seen.size + PAGE);
        const fresh = page.filter((c) => !seen.has(c.contactId));
        for (const c of fresh) seen.add(c.contactId);
        if (fresh.length === 0 || page.length < seen.size) break;
      }
      counts.due = seen.size;
      continue;
    }
    // Contacts not to list again this run: their erasure failed, or they were no longer due.
    const passedOver = new Set<string>();
    sweep: for (;;) {
      const page = (await deps.contacts.listInactive(tenantId, before, PAGE + passedOver.size)).filter(
        (c) => !passedOver.has(c.contactId),
      );
      if (page.length === 0) break;
      const inFlight: Promise<void>[] = [];
      for (const contact of page) {
        if (options.signal?.aborted) {
          await Promise.all(inFlight.splice(0));
          break sweep;
        }
        counts.due++;
        let done: Promise<{ errorReason: string }>;
        try {
          ({ done } = await startEraseContact(deps, {
            tenantId,
            contactId: contact.contactId,
            actor: { kind: 'service', id: 'contact-vault/retention' },
            keepSuppressionTombstone: false,
          }));
        } catch (err) {
          // Erased or changed since it was listed: no longer due. Anything else counts as failed.
          if (err instanceof VaultError && err.code === 'CONTACT_NOT_FOUND') counts.due--;
          else counts.failed++;
          passedOver.add(contact.contactId);
          continue;
        }
        inFlight.push(
          done.then((op) => {
            if (op.errorReason === '') counts.erased++;
            else {
              counts.failed++;
              passedOver.add(contact.contactId);
            }
          }),
        );
        if (inFlight.length >= CONCURRENT_ERASURES) await Promise.all(inFlight.splice(0));
      }
      await Promise.all(inFlight.splice(0));
    }
  }
  return report;
}
