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
 * Finds contacts past their tenant's retention and (unless `dryRun`) erases each through the normal erasure path
 * (tombstone, ledger, shred, audited; no suppression tombstone: retention is not an objection to contact).
 * `tenants` lists the tenants to sweep (tenants named in the policy are always included). Returns counts only.
 */
export async function sweepRetention(
  deps: EraseDeps,
  options: { policy: RetentionPolicy; tenants?: readonly string[]; dryRun: boolean; now?: Date },
): Promise<RetentionReport> {
  const now = options.now ?? new Date();
  const names = new Set([...(options.tenants ?? []), ...Object.keys(options.policy.tenants)]);
  const report: RetentionReport = { dryRun: options.dryRun, tenants: {} };
  for (const tenantId of [...names].sort()) {
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
    const failedIds = new Set<string>();
    for (;;) {
      const page = (await deps.contacts.listInactive(tenantId, before, PAGE + failedIds.size)).filter(
        (c) => !failedIds.has(c.contactId),
      );
      if (page.length === 0) break;
      for (const contact of page) {
        counts.due++;
        const { done } = await startEraseContact(deps, {
          tenantId,
          contactId: contact.contactId,
          actor: { kind: 'service', id: 'contact-vault/retention' },
          keepSuppressionTombstone: false,
        });
        const op = await done;
        if (op.errorReason === '') counts.erased++;
        else {
          counts.failed++;
          failedIds.add(contact.contactId);
        }
      }
    }
  }
  return report;
}
