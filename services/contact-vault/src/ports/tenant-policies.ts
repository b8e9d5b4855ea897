import type { TenantPolicy } from '../domain';

/** Per-tenant vault rules (dedupe key, normalisation). */
export interface TenantPolicies {
  of(tenantId: string): TenantPolicy;
}
