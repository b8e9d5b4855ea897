import { InvalidFieldError, NORM_VERSION, normalizeEmail, normalizePhone, suppressionHash } from '@sealpost/crypto';
import { assertTenantId, invalidField } from '../domain';
import type { ErasureRepository } from '../ports/erasure-repository';
import type { VaultDeps } from './vault-deps';

/**
 * Re-applies every erasure of the ledger: deletes the data key again (a restored older key store brings erased keys
 * back) and makes sure no live contact document remains. Run after any restore. Idempotent; returns counts.
 */
export async function reapplyErasureLedger(
  deps: Pick<VaultDeps, 'cipher' | 'contacts'> & { readonly erasures: ErasureRepository },
): Promise<{ entries: number; keysShredded: number; contactsStillLive: number }> {
  let after: string | undefined;
  let entries = 0;
  let keysShredded = 0;
  let contactsStillLive = 0;
  for (;;) {
    const page = await deps.erasures.ledger({ ...(after !== undefined ? { after } : {}), limit: 500 });
    if (page.length === 0) break;
    for (const e of page) {
      entries++;
      if (await deps.cipher.shred(e.tenantId, e.contactId)) keysShredded++;
      // A restored contact store may hold the live document again; its record is unreadable without the key, and
      // it is reported so the operator re-runs the erasure to turn it back into a tombstone.
      if (await deps.contacts.get(e.tenantId, e.contactId)) contactsStillLive++;
    }
    after = page[page.length - 1]!.erasureId;
  }
  return { entries, keysShredded, contactsStillLive };
}

/**
 * Whether an address was erased with a suppression tombstone (do not contact again). Normalises like an upsert and
 * compares HMACs under the tenant suppression key. Throws VaultError INVALID_ARGUMENT naming the field.
 */
export async function isSuppressed(
  deps: Pick<VaultDeps, 'keys' | 'policies'> & { readonly erasures: ErasureRepository },
  tenantId: string,
  by: { field: 'email' | 'phone'; value: string },
): Promise<boolean> {
  assertTenantId(tenantId);
  const policy = deps.policies.of(tenantId).normalization;
  let normalized;
  try {
    normalized = by.field === 'email' ? normalizeEmail(by.value, policy) : normalizePhone(by.value, policy);
  } catch (err) {
    if (err instanceof InvalidFieldError) throw invalidField(err.field, err.reason, err);
    throw err;
  }
  const h = suppressionHash(await deps.keys.suppressionKey(tenantId), by.field, normalized, NORM_VERSION);
  return deps.erasures.isSuppressed(tenantId, h.fieldKind, h.normVersion, h.value);
}
