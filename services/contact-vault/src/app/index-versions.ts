import type { BlindIndexKeys } from '@sealpost/crypto';
import type { VaultDeps } from './vault-deps';

/**
 * The blind-index keys lookups and dedupe must consult: the current index-root version first, then every older
 * version not yet retired (a re-index job is moving contacts over, so a value may be indexed under either).
 */
export async function liveIndexKeys(
  deps: Pick<VaultDeps, 'keys' | 'inventory'>,
  tenantId: string,
): Promise<BlindIndexKeys[]> {
  const current = await deps.keys.currentIndexKeys(tenantId);
  if (!deps.inventory || current.keyVersion === 1) return [current];
  const retired = new Set(await deps.inventory.retired(tenantId, 'index'));
  const out = [current];
  for (let v = current.keyVersion - 1; v >= 1; v--) {
    if (!retired.has(v)) out.push(await deps.keys.indexKeys(tenantId, v));
  }
  return out;
}
