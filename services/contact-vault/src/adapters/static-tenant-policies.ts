import { DEFAULT_TENANT_POLICY, type TenantPolicy } from '../domain';
import type { TenantPolicies } from '../ports/tenant-policies';

/**
 * One policy for every tenant, with optional per-tenant overrides. TODO(tenant settings): per-tenant dedupe key,
 * default phone region and alias folding come from configuration or an admin API once one exists; changing
 * normalisation for a tenant must go with an index-root rotation (re-index).
 */
export class StaticTenantPolicies implements TenantPolicies {
  constructor(
    private readonly defaults: TenantPolicy = DEFAULT_TENANT_POLICY,
    private readonly overrides: Readonly<Record<string, TenantPolicy>> = {},
  ) {}

  of(tenantId: string): TenantPolicy {
    return this.overrides[tenantId] ?? this.defaults;
  }
}
