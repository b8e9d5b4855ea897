/**
 * The vault's product metrics, recorded at the gRPC edge where each call's outcome is known: contacts written
 * (created, updated, unchanged, rejected or an error reason), reveals by purpose code and outcome, and addresses
 * resolved for sending; and by the service for its scheduled retention sweep (erased, failed) and its lease.
 * Labels are tenant ids, purpose codes, outcome codes and lease names — never contact data.
 * Refusals by the access interceptor (role, step-up, purpose) are counted in `sealpost_auth_denied_total`.
 */
import { sealpostMetrics } from '@sealpost/telemetry';

/** `ok` for success; otherwise the stable reason of the error, lower-cased (`audit_unavailable`). */
export function outcomeOf(err: unknown): string {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason.toLowerCase() : 'internal';
}

export class VaultMetrics {
  private readonly m = sealpostMetrics('contact-vault');
  private readonly upserted = this.m.counter('sealpost_vault_contacts_upserted_total');
  private readonly reveals = this.m.counter('sealpost_vault_reveals_total');
  private readonly resolved = this.m.counter('sealpost_vault_resolved_total');
  private readonly retentionErased = this.m.counter('sealpost_vault_retention_erased_total');
  private readonly leaseHeld = this.m.gauge('sealpost_lease_held');

  contactWritten(tenant: string, outcome: string, count = 1): void {
    this.upserted.add(count, { tenant, outcome });
  }

  revealed(tenant: string, purpose: string, outcome: string): void {
    this.reveals.add(1, { tenant, purpose, outcome });
  }

  addressesResolved(tenant: string, outcome: 'ok' | 'missing' | string, count: number): void {
    if (count > 0) this.resolved.add(count, { tenant, channel: 'any', outcome });
  }

  /** Counts of one retention sweep, per tenant. */
  retentionSwept(report: { tenants: Record<string, { erased: number; failed: number }> }): void {
    for (const [tenant, counts] of Object.entries(report.tenants)) {
      if (counts.erased > 0) this.retentionErased.add(counts.erased, { tenant, outcome: 'erased' });
      if (counts.failed > 0) this.retentionErased.add(counts.failed, { tenant, outcome: 'failed' });
    }
  }

  /** 1 while this replica holds `lease`, else 0. */
  lease(lease: string, held: boolean): void {
    this.leaseHeld.record(held ? 1 : 0, { lease });
  }
}
