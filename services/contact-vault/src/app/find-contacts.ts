import { InvalidFieldError, NORM_VERSION, blindIndex, normalizeEmail, normalizePhone } from '@sealpost/crypto';
import type { BlindIndexFieldKind } from '@sealpost/crypto';
import { assertTenantId, invalidField } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import { liveIndexKeys, previousRulesEmailIndexes } from './index-versions';
import { maskedViewOf, type MaskedContactView } from './masked-contact';
import { indexKeyOf, sameIndex, type VaultDeps } from './vault-deps';

/** Audit action of a lookup; subject token `contact_find`. */
export const FIND_AUDIT_ACTION = 'contact.find';

export interface FindContactsInput {
  readonly tenantId: string;
  readonly by: { readonly field: BlindIndexFieldKind; readonly value: string };
  readonly actor: VaultAuditEvent['actor'];
}

export interface FindContactsResult {
  readonly contacts: MaskedContactView[];
  readonly auditEventId: string;
}

/**
 * Exact-match lookup through the blind index only (no scan, no decrypt to compare). Membership is itself personal
 * data, so the lookup is audited — ids only — and the answer goes out only after the audit stream accepted the
 * event. Throws VaultError INVALID_ARGUMENT (field `email`/`phone`), AUDIT_UNAVAILABLE.
 */
export async function findContacts(
  deps: VaultDeps & { readonly audit: AuditPublisher },
  input: FindContactsInput,
): Promise<FindContactsResult> {
  assertTenantId(input.tenantId);
  const { field, value } = input.by;
  if (typeof value !== 'string' || value === '') throw invalidField(field, 'is required');
  const policy = deps.policies.of(input.tenantId).normalization;
  let normalized;
  try {
    normalized = field === 'email' ? normalizeEmail(value, policy) : normalizePhone(value, policy);
  } catch (err) {
    if (err instanceof InvalidFieldError) throw invalidField(err.field, err.reason, err);
    throw err;
  }
  const found = [];
  // While a re-index runs a contact may be indexed under the old version only, and (after a change of rules) as
  // normalised under the old rules: consult every live version, then the old rules under the older versions.
  const live = await liveIndexKeys(deps, input.tenantId);
  const candidates = [
    ...live.map((keys) => blindIndex(keys, field, normalized, NORM_VERSION)),
    ...(field === 'email' ? previousRulesEmailIndexes(live.slice(1), value, normalized, policy) : []),
  ];
  // A contact that moves from one entry to another (a re-index) lists the new one before it drops the old one, but a
  // pass that checks the new entry just before the move and the old one just after would miss it: a pass that saw
  // an entry its contact did not list (yet) is repeated, a few times.
  for (let pass = 0; pass < 5 && found.length === 0; pass++) {
    if (pass > 0) await new Promise((r) => setTimeout(r, 5 * pass));
    let inFlight = false;
    for (const index of candidates) {
      const entry = await deps.indexEntries.find(indexKeyOf(input.tenantId, index));
      if (!entry) continue;
      const contact = await deps.contacts.get(input.tenantId, entry.contactId);
      // Only an entry its contact lists counts: a claim in flight or a stale leftover is not a match.
      if (contact && contact.indexes.some((i) => sameIndex(i, index))) {
        found.push(contact);
        break;
      }
      inFlight = true;
    }
    if (!inFlight) break;
  }
  const auditEventId = await deps.audit.record({
    tenantId: input.tenantId,
    action: FIND_AUDIT_ACTION,
    actor: input.actor,
    resourceIds: found.map((c) => c.contactId),
    outcome: 'granted',
  });
  const contacts: MaskedContactView[] = [];
  for (const contact of found) contacts.push(await maskedViewOf(deps, contact));
  return { contacts, auditEventId };
}
