import {
  InvalidFieldError,
  NORM_VERSION,
  blindIndex,
  normalizeEmail,
  type BlindIndex,
  type BlindIndexKeys,
  type NormalizationPolicy,
} from '@sealpost/crypto';
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

/**
 * Extra index values a lookup (FindContacts, an upsert's dedupe) consults while a re-index runs, never claimed:
 * the email normalised with alias folding flipped, under each OLDER live version only. A contact the re-index has
 * not reached yet was normalised under the rules in force when it was written, and folding is the only rule whose
 * change alters a stored value (stored phones are E.164 whatever the default region). The current version needs
 * none: the re-index writes it under the current rules. Empty when nothing differs or the value does not normalise.
 */
export function previousRulesEmailIndexes(
  olderKeys: readonly BlindIndexKeys[],
  rawEmail: string | null | undefined,
  current: string | undefined,
  policy: NormalizationPolicy,
): BlindIndex[] {
  if (olderKeys.length === 0 || typeof rawEmail !== 'string' || rawEmail === '' || current === undefined) return [];
  let other;
  try {
    other = normalizeEmail(rawEmail, { ...policy, foldEmailAliases: !policy.foldEmailAliases });
  } catch (err) {
    if (err instanceof InvalidFieldError) return [];
    throw err;
  }
  if (other === current) return [];
  return olderKeys.map((keys) => blindIndex(keys, 'email', other, NORM_VERSION));
}
